-- wrk script: GET /r/{code} with codes drawn at random from CODES_FILE (one per line).
-- SEQUENTIAL=1 walks the codes in order instead (the warm-up uses it to load every code).
-- RETURNING=1 sends one of 1,000 viewer cookies with each request (returning viewers: no
-- Set-Cookie in the answer); otherwise every request is a new viewer (the worst case).
local codes = {}
for line in io.lines(os.getenv("CODES_FILE")) do
  codes[#codes + 1] = line
end
local sequential = os.getenv("SEQUENTIAL") == "1"
local returning = os.getenv("RETURNING") == "1"
local i = 0
math.randomseed(os.time())

local cookies = {}
if returning then
  local hex = "0123456789abcdef"
  for n = 1, 1000 do
    local chars = {}
    for c = 1, 32 do
      local k = math.random(16)
      chars[c] = hex:sub(k, k)
    end
    cookies[n] = { ["Cookie"] = "sl_vid=" .. table.concat(chars) }
  end
end

request = function()
  if sequential then
    i = i + 1
    return wrk.format("GET", "/r/" .. codes[(i % #codes) + 1])
  end
  local path = "/r/" .. codes[math.random(#codes)]
  if returning then
    return wrk.format("GET", path, cookies[math.random(#cookies)])
  end
  return wrk.format("GET", path)
end
