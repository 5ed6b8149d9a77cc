"""Traffic classes for real-world user agents (rules from src/shoplink/clicks/ua_rules.json)."""

from __future__ import annotations

import pytest

from shoplink.clicks.classify import default_classifier

REAL_AGENTS: list[tuple[str, str, str | None]] = [
    # People: desktop and mobile browsers, and in-app browsers of the social apps.
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", "human", None),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4.1 Safari/605.1.15", "human", None),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "human", None),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4.1 Mobile/15E148 Safari/604.1", "human", None),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.6367.82 Mobile Safari/537.36", "human", None),
    ("Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", "human", None),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80", "human", None),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.36.107;FBBV/586254335;FBDV/iPhone15,2;FBMD/iPhone;"
     "FBSN/iOS;FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]", "human", None),
    ("Mozilla/5.0 (Linux; Android 14; SM-A546B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 Instagram "
     "329.0.0.41.93 Android (34/14; 450dpi; 1080x2340; samsung; SM-A546B; a54x; s5e8835; en_US; 592838040)",
     "human", None),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Mobile/15E148 musical_ly_33.8.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en "
     "Region/US ByteFullLocale/en WKWebView/1 BytedanceWebview/d8a21c6", "human", None),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Mobile/15E148 Twitter for iPhone/10.34", "human", None),
    ("Mozilla/5.0 (Linux; Android 12; CUBOT KINGKONG 7 Build/SP1A.210812.016) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36", "human", "cubot-phone"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Mobile/15E148 LinkedInApp/9.29.4651", "human", None),
    # Link previews of the messengers and social networks.
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "link_preview", "slack"),
    ("Slack-ImgProxy (+https://api.slack.com/robots)", "link_preview", "slack"),
    ("Twitterbot/1.0", "link_preview", "twitter"),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "link_preview", "facebook"),
    ("facebookcatalog/1.0", "link_preview", "facebook"),
    ("LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
     "link_preview", "linkedin"),
    ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "link_preview", "discord"),
    ("WhatsApp/2.23.20.0 A", "link_preview", "whatsapp"),
    ("WhatsApp/2.2412.54 i", "link_preview", "whatsapp"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
     "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
     "link_preview", "imessage"),
    ("TelegramBot (like TwitterBot)", "link_preview", "telegram"),
    ("Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com",
     "link_preview", "skype"),
    ("Pinterestbot/1.0 (+http://www.pinterest.com/bot.html)", "link_preview", "pinterest"),
    ("Mozilla/5.0 (compatible; Snap URL Preview Service; bot; snapchat; https://developers.snap.com/robots)",
     "link_preview", "snapchat"),
    ("Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)", "link_preview", "reddit"),
    ("http.rb/5.1.1 (Mastodon/4.2.8; +https://mastodon.social/) Bot", "link_preview", "mastodon"),
    # Crawlers, headless browsers, scripts.
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", "googlebot"),
    ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
     "+http://www.google.com/bot.html)", "bot", "googlebot"),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bot", "bingbot"),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "bot", "yandex"),
    ("Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", "bot", "baidu"),
    ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", "bot", "duckduckbot"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)", "bot", "applebot"),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "bot", "seo-crawler"),
    ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", "bot", "seo-crawler"),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
     "bot", "ai-crawler"),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; "
     "+claudebot@anthropic.com)",
     "bot", "ai-crawler"),
    ("Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
     "(compatible; Bytespider; spider-feedback@bytedance.com)", "bot", "ai-crawler"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.60 "
     "Safari/537.36", "bot", "headless-chrome"),
    ("Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 "
     "Safari/538.1", "bot", "phantomjs"),
    ("Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse", "bot", "lighthouse"),
    ("curl/8.5.0", "bot", "http-library"),
    ("Wget/1.21.4", "bot", "http-library"),
    ("python-requests/2.31.0", "bot", "http-library"),
    ("Go-http-client/1.1", "bot", "http-library"),
    ("okhttp/4.12.0", "bot", "http-library"),
    ("Scrapy/2.11.1 (+https://scrapy.org)", "bot", "http-library"),
    ("Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)", "bot", "seo-crawler"),
    ("Mozilla/5.0 (compatible; SomeNewCrawler/0.1; +https://crawler.example/about)", "bot", "generic-bot"),
    ("", "bot", "empty"),
]


@pytest.mark.parametrize(("agent", "ua_class", "family"), REAL_AGENTS)
def test_real_user_agents(agent: str, ua_class: str, family: str | None) -> None:
    assert default_classifier().classify(agent) == (ua_class, family)


def test_there_are_enough_real_agents() -> None:
    assert len(REAL_AGENTS) >= 30
    assert {c for _, c, _ in REAL_AGENTS} == {"human", "bot", "link_preview"}


def test_results_are_memoised_in_a_bounded_lru() -> None:
    classifier = default_classifier()
    classifier.classify("curl/8.5.0")
    before = classifier.classify.cache_info()
    classifier.classify("curl/8.5.0")
    after = classifier.classify.cache_info()
    assert after.hits == before.hits + 1 and after.maxsize is not None
