-- wrk script: GET /r/{code} with codes drawn at random from CODES_FILE (one per line).
-- SEQUENTIAL=1 walks the codes in order instead (the warm-up uses it to load every code).
local codes = {}
for line in io.lines(os.getenv("CODES_FILE")) do
  codes[#codes + 1] = line
end
local sequential = os.getenv("SEQUENTIAL") == "1"
local i = 0
math.randomseed(os.time())

request = function()
  if sequential then
    i = i + 1
    return wrk.format("GET", "/r/" .. codes[(i % #codes) + 1])
  end
  return wrk.format("GET", "/r/" .. codes[math.random(#codes)])
end
