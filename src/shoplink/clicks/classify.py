"""Traffic classes from the User-Agent: human, bot or link_preview (classified, never dropped).

The rules are data (`ua_rules.json`, first match wins). Results are memoised in a bounded LRU
keyed by the exact User-Agent string, so a click costs one dictionary lookup in steady state:
real traffic repeats a small set of user agents.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

UA_CLASSES = ("human", "bot", "link_preview")
CACHE_SIZE = 8192
MAX_UA_LENGTH = 1024  # longer values are classified on their first 1024 characters


@dataclass(frozen=True)
class Rule:
    family: str
    ua_class: str
    pattern: re.Pattern[str]


class Classifier:
    def __init__(self, rules: list[Rule], empty: tuple[str, str | None]) -> None:
        self.rules = rules
        self.empty = empty
        # One bounded LRU per classifier; the C implementation keeps a hit at well under 1 µs.
        self.classify = functools.lru_cache(maxsize=CACHE_SIZE)(self._classify)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Classifier:
        rules = []
        for item in data["rules"]:
            if item["class"] not in UA_CLASSES:
                raise ValueError(f"unknown class {item['class']!r} in rule {item['family']!r}")
            rules.append(Rule(item["family"], item["class"], re.compile(item["pattern"], re.IGNORECASE)))
        empty = data.get("empty", {"class": "bot", "family": "empty"})
        return cls(rules, (empty["class"], empty["family"]))

    def _classify(self, user_agent: str) -> tuple[str, str | None]:
        """(ua_class, family): family names the rule that matched, None for plain browsers."""
        ua = user_agent.strip()[:MAX_UA_LENGTH]
        if not ua:
            return self.empty
        for rule in self.rules:
            if rule.pattern.search(ua):
                return rule.ua_class, rule.family
        return "human", None


@functools.cache
def default_classifier() -> Classifier:
    text = resources.files("shoplink.clicks").joinpath("ua_rules.json").read_text(encoding="utf-8")
    return Classifier.from_data(json.loads(text))
