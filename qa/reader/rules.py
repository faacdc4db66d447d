"""Picking the answer inside retrieved passages: first the sentence, then the phrase.

No reader model ships offline, so this is the classic feature-based reader: the question's
expected answer type (who -> a name, when -> a date, how many -> a number ...), candidate
phrases found by patterns over word tokens, and their closeness to the question's words in
the sentence. A span is always whole words inside one sentence, so answers never cut a word
or a sentence in half.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..lexical import STOPWORDS, _stem_words
from . import sigmoid

# ---------------------------------------------------------------------------------------------
# Questions

MONTHS = {m: i for i, ms in enumerate(
    [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
     ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
     ("december", "dec")]) for m in ms}
WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
NUMBER_WORDS = {
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty",
    "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million", "billion", "trillion", "dozen",
    "dozens", "numerous", "few", "multiple", "hundreds", "thousands", "millions", "billions", "half", "several", "both", "single", "once", "twice",
}
NUMBER_MODIFIERS = {"about", "around", "approximately", "nearly", "almost", "some", "over", "under", "more", "less",
                    "than", "at", "least", "most", "up", "to", "roughly", "just", "only", "all", "the", "a", "an"}
DURATION_UNITS = {"second", "minute", "hour", "day", "week", "month", "year", "decade", "century", "seconds",
                  "minutes", "hours", "days", "weeks", "months", "years", "decades", "centuries"}
PLACE_NOUNS = {"city", "country", "place", "town", "capital", "state", "region", "nation", "province", "village",
               "continent", "location", "area", "countries", "cities", "places", "site", "venue", "island"}
PERSON_NOUNS = {"person", "leader", "official", "diplomat", "minister", "president", "man", "woman", "envoy",
                "people", "politician", "player", "author", "king", "queen", "emperor", "scientist", "general",
                "secretary", "spokesman", "representative", "member", "figure", "ruler", "coach", "artist"}
# Nouns for organisations: "which news *outlets*", "which armed *groups*" want their names.
ORG_NOUNS = {"outlet", "newspaper", "agency", "agencies", "organization", "organisation", "company", "companies", "group",
             "party", "parties", "media", "channel", "network", "broadcaster", "publication", "movement", "faction",
             "militia", "coalition", "alliance", "institution", "body", "bodies", "team", "club", "firm", "bank"}
TIME_NOUNS = {"year", "date", "day", "time", "month", "century", "decade", "period", "era", "hour", "season"}
# Words that head organisation names: a person's name starts after them.
ORG_WORDS = {"nations", "states", "front", "party", "council", "ministry", "liberation", "union", "organization", "organisation", "army",
             "committee", "group", "agency", "office", "department", "coalition", "movement", "force", "forces",
             "university", "company", "corporation", "association", "league", "church", "court", "assembly"}
# Titles and roles before a name: "Deputy Foreign Minister Mikhail Bogdanov" -> "Mikhail Bogdanov".
ROLE_WORDS = {"president", "minister", "secretary", "deputy", "foreign", "defense", "defence", "envoy", "special",
              "representative", "ambassador", "general", "director", "chairman", "spokesman", "spokeswoman",
              "chief", "head", "leader", "prime", "senator", "governor", "mayor", "king", "queen", "prince",
              "state", "permanent", "commander", "colonel", "captain", "mr", "mrs", "ms", "dr", "prof", "sir",
              "lord", "saint", "pope", "bishop", "judge", "justice", "officer", "adviser", "advisor", "vice"}
OPENERS = {"now", "however", "meanwhile", "earlier", "later", "today", "yesterday", "according", "naturally",
           "overall", "namely", "still", "yet", "thus", "hence", "instead", "also", "although", "though", "while",
           "since", "after", "before", "when", "as", "if", "in", "on", "at", "for", "with", "without", "among"}
NAME_CONNECTORS = {"de", "del", "della", "da", "di", "van", "von", "der", "al", "bin", "ibn", "la", "le", "el",
                   "of", "for", "and", "the", "du", "y", "&"}


@dataclass(frozen=True)
class Question:
    text: str
    kind: str  # person, date, number, duration, place, reason, list, entity, description
    target: frozenset[str]  # stems of the noun the question asks about ("how many *fighters*", "whose *request*")
    stems: frozenset[str]  # stems of the question's content words
    weights: dict  # stem -> weight (idf-like) of the question's content words
    # Words describing the thing asked for: "which *American* official" -> {"u.s"}. The answer must
    # carry them itself ("US Ambassador John Tefft"), not merely share a sentence with them.
    descriptors: frozenset[str] = frozenset()
    places: bool = False  # asks for places ("which countries", "which two cities")
    reported: bool = False  # asks who said something: the answer is the speaker ("Lavrov said")
    when: str = ""  # "time" for a time of day ("at what time"), "year" for a year
    defines: bool = False  # "Who is ...?", "Which official heads ...?": asks for whoever is so described


_Q_PATTERNS = [
    (r"^\s*(?:and\s+)?(?:who|whom)\b", "person"),
    (r"\bwhose\b", "person"),
    (r"\bhow\s+(?:many|much)\b", "number"),
    (r"\b(?:for\s+)?how\s+long\b", "duration"),
    (r"\bhow\s+often\b|\bhow\s+frequently\b", "frequency"),
    (r"\bhow\s+(?:old|far|big|large|high|tall)\b", "number"),
    (r"\bwhat\s+is\s+the\s+number\s+of\b", "number"),
    (r"\bwhat\s+(?:percentage|percent|proportion|number|amount)\b", "number"),
    (r"^\s*when\b|\b(?:what|which)\s+(?:date|year|day|month|time|century|decade|season)\b|\bat\s+what\s+(?:local\s+)?time\b|\bwhen\b", "date"),
    (r"^\s*where\b|\b(?:which|what)\s+(?:city|country|place|town|capital|state|region|nation|province|village|continent|location|area)\b|\bwhere\b", "place"),
    (r"^\s*why\b|\bwhat\s+(?:for|reason)\b|\bfor\s+what\s+(?:reason|purpose)\b|\bused\b.*\bfor\s*\?\s*$|\bwhy\b", "reason"),
    (r"\b(?:which|what)\s+(?:two|three|four|five|six|seven|eight|nine|ten)\b|\blist\b", "list"),
    (r"\b(?:which|what)\s+(?:person|leader|official|diplomat|minister|president|man|woman|envoy|politician|general)\b", "person"),
]


def analyse(question: str, weight_of=None, aliases: dict | None = None) -> Question:
    """Expected answer type and content words of a question."""
    text = question.strip()
    low = text.lower()
    aliases = aliases or {}
    kind = "entity" if re.search(r"\b(which|what|name)\b", low) else "description"
    for pattern, k in _Q_PATTERNS:
        if re.search(pattern, low):
            kind = k
            break
    target: set[str] = set()
    m = re.search(r"\bhow\s+(?:many|much)\s+((?:(?!(?:did|do|does|are|is|were|was|have|has|had|will|would|can|could|"
                  r"remain|remained|exist|live|took|take|died|die)\b)[\w'’-]+\s*?){1,3}?)(?=\s+(?:\w+ed|did|do|does|are|is|were|"
                  r"was|have|has|had|will|would|can|could|remain|remained|exist|live|took|take|died|die)\b|\s*[?,]|$)", low)
    m = m or re.search(r"\bthe\s+number\s+of\s+(?:the\s+)?((?:[\w'’-]+\s+){0,2}[\w'’-]+)", low)
    m = m or re.search(r"\bwhose\s+((?:[\w'’-]+\s+){0,1}[\w'’-]+?)(?=\s+(?:did|do|does|are|is|were|was|have|has|had|will|would|can|could)\b|\s*\?|$)", low)
    if m:
        target = set(_stems([w for w in m.group(1).split() if w not in STOPWORDS], aliases))
    descriptors: list[str] = []
    places = False
    m2 = re.search(r"\b(?:which|what)\s+((?:[\w'’.-]+\s+){0,3})", text, re.IGNORECASE)
    if m2:
        words = m2.group(1).split()
        for n, word in enumerate(words):  # the head noun: "which Syrian opposition *leader*"
            noun = word.lower()
            plural = noun.endswith("s") and noun[:-1] in PERSON_NOUNS | PLACE_NOUNS or noun in {"countries", "cities", "people"}
            if kind == "entity" and (noun in ORG_NOUNS or noun.endswith("s") and noun[:-1] in ORG_NOUNS):
                kind = "organisation"
                descriptors = _stems([w for w in words[:n] if w.lower() not in STOPWORDS | NUMBER_WORDS | ORG_NOUNS | {"news"}], aliases)
                break
            if noun in PERSON_NOUNS or noun in PLACE_NOUNS or noun in TIME_NOUNS or plural:
                if kind == "entity":
                    person = noun in PERSON_NOUNS or plural and noun[:-1] in PERSON_NOUNS  # "which Iranian officials"
                    kind = ("person" if person else "list" if plural or noun in {"countries", "cities"} else
                            "place" if noun in PLACE_NOUNS else "date")
                places = kind in ("list", "place") and noun not in ("area", "areas") and (noun in PLACE_NOUNS or noun.rstrip("s") in PLACE_NOUNS)
                if kind == "person" or places:
                    descriptors = _stems([w for w in words[:n] if w.lower() not in STOPWORDS | NUMBER_WORDS], aliases)
                break
    content = [w for w in _WORDS.findall(text) if w.lower() not in STOPWORDS - {"us"} and w.lower() not in {"many", "much", "whose", "whom", "long"}]
    content = [w for w in content if w.lower() != "us" or w == "US"]  # "the US", not "us"
    stems = _stems(content, aliases)
    weights = {s: (weight_of(s) if weight_of else 1.0) for s in stems}
    reported = kind == "person" and re.search(r"\b(?:said|says?|told|tell|announced?|stated|noted|stressed|claimed|warned|"
                                                r"declared|insisted|added|emphasi[sz]ed|called|urged)\b", low) is not None
    defined = _DEFINED.match(text)
    if kind == "person" and not descriptors and defined:
        # "Who is the US Secretary of State?": the answer is the name the article describes so.
        descriptors = _stems([w for w in _WORDS.findall(defined.group(1)) if w.lower() not in STOPWORDS - {"us"}], aliases)
    when = ("time" if re.search(r"\b(?:what|which)\s+(?:local\s+)?(?:time|hour)\b", low) else
            "year" if re.search(r"\b(?:what|which)\s+year\b", low) else "")
    return Question(text, kind, frozenset(target), frozenset(stems), weights, frozenset(descriptors), places, reported, when,
                    _DEFINITION.match(text) is not None)


# A question that defines its answer, and (for "who" questions) the description it gives.
_DEFINITION = re.compile(r"^\s*(?:who|which\s+[\w'’-]+(?:\s+[\w'’-]+)?)\s+(?:is|was|are|were|serves?|served|heads?|headed|leads?|led|acts?|acted)\b", re.I)
_DEFINED = re.compile(r"^\s*who\s+(?:is|was|are|were|(?:serves?|served|acts?|acted)\s+as|heads?|headed|leads?|led)\s+(.+?)\s*\??\s*$",
                      re.IGNORECASE)
_WORDS = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*\.?")


def _stems(words: list[str], aliases: dict) -> list[str]:
    """Stems of words as written (capitals tell "Syrian" the adjective from "syrian" nothing)."""
    lows = [fold_spelling(w.lower().replace("’", "'").rstrip(".")) for w in words]
    stems = _stem_words(lows)
    return [aliases.get(st, st) if w[:1].isupper() else st for w, st in zip(words, stems)]


# Patterns used per token, compiled once.
_RE0 = re.compile(r"1\d{3}|20\d{2}|\d{1,2}:\d{2}")
_RE1 = re.compile(r"\d{1,2}(st|nd|rd|th)?")
_RE2 = re.compile(r"\d{4}")
_RE3 = re.compile(r"(1\d{3}|20\d{2})s?")
_RE4 = re.compile(r"\d{1,2}:\d{2}")

# ---------------------------------------------------------------------------------------------
# Sentences as word tokens

_TOKEN = re.compile(r"\d+(?:[.,:/]\d+)*(?:st|nd|rd|th|s)?|[^\W\d_]+(?:[-'’.][^\W_]+)*|[^\w\s]")


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int
    low: str
    stem: str
    parts: frozenset = frozenset()  # stems of hyphenated parts: "guarantor-countries" matches "countries"
    word: bool = False  # a word or number, not punctuation (a field: read in every loop of the reader)

    def matches(self, stems) -> bool:
        return self.stem in stems or not self.parts.isdisjoint(stems)

    @property
    def capitalised(self) -> bool:
        # "Geneva-based", "US-led": adjectives, not names
        return self.text[0].isupper() and not ("-" in self.text and self.text.rsplit("-", 1)[1][:1].islower())

    @property
    def number(self) -> bool:
        return self.text[0].isdigit() or self.low in NUMBER_WORDS


def tokenize(text: str, start: int, end: int, aliases: dict | None = None) -> list[Token]:
    aliases = aliases or {}
    found = [(m.group(), start + m.start(), start + m.end()) for m in _TOKEN.finditer(text[start:end])]
    lows = [t.lower().replace("’", "'") for t, _, _ in found]
    # Possessives are not part of a name: "Mistura’s" -> "Mistura" + "’s".
    tokens: list[Token] = []
    for (t, s, e), low in zip(found, lows):
        if len(t) > 2 and low.endswith("'s") and t[0].isalpha():
            tokens.append(Token(t[:-2], s, e - 2, low[:-2], ""))
            tokens.append(Token(t[-2:], e - 2, e, "'s", ""))
        else:
            tokens.append(Token(t, s, e, low, ""))
    stems = _stems([t.text for t in tokens], aliases)
    out = []
    for t, st in zip(tokens, stems):
        parts = frozenset(_stems([p for p in t.text.split("-") if p], aliases)) if "-" in t.low else frozenset()
        out.append(Token(t.text, t.start, t.end, t.low, st, parts, t.text[0].isalnum()))
    return out


# British spellings folded to American ones, so "defence" matches "defense" (news wires mix both).
_BRITISH = [(re.compile(pattern), american) for pattern, american in (
    (r"^(defen|offen|licen|preten)ce(s?)$", r"\1se\2"),
    (r"^(cent|theat|met|lit|fib|calib)re(s?)$", r"\1er\2"),
    (r"^(cent|theat|met|lit|fib|calib)red$", r"\1ered"),
    (r"^(hono|labo|favo|neighbo|behavio|colo|harbo|rumo|armo|vigo|endeavo|humo|savo)ur(.*)$", r"\1r\2"),
    (r"^(organ|recogn|real|critic|apolog|emphas|stabil|mobil|normal|legitim|priorit|author|characteri?|final|summar|"
     r"util|jeopard|minim|maxim|modern|neutral|central|privat|militar|subsid|sympath|harmon|standard|special|"
     r"capital|optim|categor|memor|formal|national|civil|ideal|global|local|demilitar|synchron|motor|hospital)"
     r"is(e|ed|es|ing|ation|ations|er|ers)$", r"\1iz\2"),
    (r"^(analy|paraly|cataly)s(e|ed|es|ing)$", r"\1z\2"),
    (r"^(catalog|dialog)ue(s?)$", r"\1\2"),
    (r"^(program)me(s?)$", r"\1\2"),
    (r"^(travel|cancel|model|label|fuel|signal)l(ed|ing|er|ers)$", r"\1\2"),
)]


def fold_spelling(word: str) -> str:
    for pattern, american in _BRITISH:
        folded, n = pattern.subn(american, word)
        if n:
            return folded
    return word


# Other names for the United States, as stems.
_US = {"us": "u.s", "usa": "u.s", "u.s.a": "u.s", "america": "u.s", "american": "u.s"}
_DEMONYM_ENDINGS = ("ian", "an", "ish", "ese", "i", "n")
_PLACE_ENDINGS = ("", "a", "ia", "e", "y", "ey", "on", "any")


def demonyms(texts) -> dict[str, str]:
    """Stem aliases for the adjectives of places the corpus names: "syrian" -> "syria", "turkish" -> "turkey".

    Drawn from the articles' own capitalised words: "Turkish" pairs with "Turkey" because both
    appear, so nothing depends on a list of countries.
    """
    capitalised: set[str] = set()
    for text in texts:
        capitalised.update(w.lower().replace("’", "'") for w in re.findall(r"\b[A-Z][a-z]{2,}\b", text))
    pairs = {}
    for word in capitalised:
        for ending in _DEMONYM_ENDINGS:
            root = word[: -len(ending)]
            if not word.endswith(ending) or len(root) < 3:
                continue
            place = next((root + e for e in _PLACE_ENDINGS if root + e in capitalised and root + e != word), None)
            if place:
                pairs[word] = place
                break
    stems = _stem_words(list(pairs) + list(pairs.values()))
    aliases = dict(zip(stems[: len(pairs)], stems[len(pairs):]))
    aliases = {a: b for a, b in aliases.items() if a != b}
    return {**aliases, **_US}


# ---------------------------------------------------------------------------------------------
# Candidate phrases


@dataclass(frozen=True)
class Span:
    i: int  # first token
    j: int  # one past the last token
    kind: str
    score: float = 0.0


def _is_date_token(t: Token) -> bool:
    return t.low.rstrip(".") in MONTHS or t.low in WEEKDAYS or bool(_RE0.fullmatch(t.low))


def _names(tokens: list[Token], connectors: set[str] = NAME_CONNECTORS) -> list[Span]:
    """Runs of capitalised words, joined by name connectors: "Staffan de Mistura"."""
    spans = []
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if t.word and t.capitalised and not _is_date_token(t) and t.low not in STOPWORDS | OPENERS:
            j = i + 1
            while j < n:
                u = tokens[j]
                if u.word and (u.capitalised or (u.text[0].isdigit() and tokens[j - 1].capitalised)) and not _is_date_token(u):
                    j += 1
                elif u.low in connectors and j + 1 < n and tokens[j + 1].word and tokens[j + 1].capitalised:
                    j += 1
                else:
                    break
            spans.append(Span(i, j, "name"))
            i = j
        else:
            i += 1
    return spans


def _person(tokens: list[Token], span: Span) -> Span | None:
    """The personal name inside a name run, without titles or an organisation before it."""
    i, j = span.i, span.j
    for k in range(span.i, span.j):
        if tokens[k].low in ORG_WORDS or tokens[k].low in ROLE_WORDS or tokens[k].low in NAME_CONNECTORS - {"de", "van", "von", "al", "bin", "ibn", "da", "di", "del", "der", "du", "la", "le", "el"}:
            i = k + 1
    while i < j and tokens[i].low in NAME_CONNECTORS:
        i += 1
    if i >= j:
        return None
    words = [t for t in tokens[i:j] if t.word]
    if any(t.text.isupper() and len(t.text) > 1 for t in words) or any(t.text[0].isdigit() for t in words):
        return Span(i, j, "name")  # an acronym or a number: an organisation or a thing, not a person
    return Span(i, j, "person")


def _dates(tokens: list[Token]) -> list[Span]:
    spans = []
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if t.low.rstrip(".") in MONTHS and t.capitalised:
            j = i + 1
            if j < n and _RE1.fullmatch(tokens[j].low):
                j += 1
                if j + 1 < n and tokens[j].text in ("-", "–") and _RE1.fullmatch(tokens[j + 1].low):
                    j += 2  # "February 15-16"
            if j + 1 < n and tokens[j].text == "," and _RE2.fullmatch(tokens[j + 1].low):
                j += 2
            elif j < n and _RE2.fullmatch(tokens[j].low):
                j += 1
            if i > 0 and _RE1.fullmatch(tokens[i - 1].low):
                i -= 1
            if j - i > 1 or t.low not in ("may", "march"):  # alone, "May" and "March" are usually not months
                spans.append(Span(i, j, "date"))
            i = j
            continue
        if t.low in WEEKDAYS or _RE3.fullmatch(t.low):
            spans.append(Span(i, i + 1, "date"))
        elif _RE4.fullmatch(t.low):
            j = i + 1
            while j < n and tokens[j].low in {"local", "time", "a.m", "p.m", "am", "pm", "gmt", "utc"}:
                j += 1
            spans.append(Span(i, j, "date"))
        i += 1
    return spans


def _numbers(tokens: list[Token]) -> list[Span]:
    spans = []
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        in_date = (i > 0 and tokens[i - 1].low.rstrip(".") in MONTHS) or (i + 1 < n and tokens[i + 1].low.rstrip(".") in MONTHS) \
            or (i > 2 and tokens[i - 1].text in ("-", "–") and tokens[i - 3].low.rstrip(".") in MONTHS)  # "February 15-16"
        if t.word and t.number and not in_date and not _is_date_token(t) and t.low not in {"both", "once", "twice", "single", "half"}:
            j = i + 1
            while j < n and tokens[j].word and tokens[j].number:
                j += 1
            k = i
            while k > 0 and tokens[k - 1].low in {"about", "around", "approximately", "nearly", "almost", "some", "over", "roughly", "more", "than", "least", "at", "up", "to"} and k > i - 3:
                k -= 1
            spans.append(Span(k if _modifier_ok(tokens, k, i) else i, j, "number"))
            i = j
        else:
            i += 1
    return spans


def _modifier_ok(tokens: list[Token], k: int, i: int) -> bool:
    phrase = " ".join(t.low for t in tokens[k:i])
    return phrase in {"", "about", "around", "approximately", "nearly", "almost", "some", "over", "roughly",
                      "more than", "at least", "up to", "less than"}


def _chunks(tokens: list[Token], question: Question) -> list[Span]:
    """Runs of words the question does not contain, cut at punctuation: the fallback phrases."""
    spans = []
    i, n = 0, len(tokens)
    while i < n:
        if tokens[i].word and tokens[i].stem not in question.stems and tokens[i].low not in STOPWORDS:
            j = i + 1
            if tokens[i].low in REPORTING:
                i += 1
                continue
            while j < n and tokens[j].word and tokens[j].stem not in question.stems and not (
                tokens[j].low in {"and", "or", "but", "that", "which", "who"} | REPORTING
            ):
                j += 1
            while j > i + 1 and tokens[j - 1].low in STOPWORDS:
                j -= 1
            spans.append(Span(i, j, "chunk"))
            i = j
        else:
            i += 1
    return spans


def _lists(tokens: list[Token], question: Question) -> list[Span]:
    """Coordinated runs "X, Y and Z" not containing question words."""
    spans = []
    n = len(tokens)
    for k, t in enumerate(tokens):
        if t.low != "and":
            continue
        if k + 1 < n and tokens[k + 1].capitalised:
            spans += _name_list(tokens, k)
            continue
        if k + 1 < n and tokens[k + 1].low in {"so", "others", "elsewhere", "more", "etc", "the"} and (
                k + 2 >= n or not tokens[k + 2].word or tokens[k + 2].low in {"forth", "on", "others"}):
            spans += _name_list(tokens, k, open_ended=True)
            continue  # "and so forth", "and elsewhere": not a list's last item
        # extend right to a punctuation mark, left over commas
        j = k + 1
        while j < n and tokens[j].word and tokens[j].stem not in question.stems and j - k <= 6:
            j += 1
        i = k
        while i > 0 and (tokens[i - 1].word or tokens[i - 1].text == ",") and tokens[i - 1].stem not in question.stems \
                and tokens[i - 1].text not in {":", ";"} and tokens[i - 1].low not in LIST_STOPS and k - i <= 14:
            i -= 1
        while i < k and not tokens[i].word:
            i += 1
        if j > k + 1 and k > i:
            spans.append(Span(i, j, "list"))
    return spans


def _name_list(tokens: list[Token], k: int, open_ended: bool = False) -> list[Span]:
    """"Manbij and Raqqa", or "Iraq, Libya, Yemen" before "and elsewhere": names joined by commas and "and"."""
    names = {s.i: s for s in _names(tokens, NAME_CONNECTORS - {"and", "&"})}
    ends = {s.j: s for s in names.values()}
    right = None if open_ended else names.get(k + 1)
    left = ends.get(k)
    if left is None or (right is None and not open_ended):
        return []
    i, count = left.i, 1
    while i >= 2 and tokens[i - 1].text == "," and (i - 1) in ends:
        i = ends[i - 1].i
        count += 1
    if open_ended:
        return [Span(i, k, "list")] if count >= 2 else []
    return [Span(i, right.j, "list")]


# Ranks that make a different office of a title: a deputy foreign minister is not the foreign minister.
RANKS = ("deputy", "vice", "former", "acting", "assistant", "ex")
# Words opening a sentence that refers back to the one before: "He said it was done at a request from ..."
ANAPHORS = {"he", "she", "it", "they", "this", "these", "that", "those", "his", "her", "its", "their", "such", "there"}
REPORTING = {"said", "says", "say", "added", "adds", "noted", "notes", "continued", "stressed", "told", "stated",
             "explained", "emphasized", "emphasised", "according", "reported", "announced", "asked", "claimed", "insisted"}
FREQUENCY = {"daily", "weekly", "monthly", "yearly", "annually", "hourly", "always", "often", "regularly",
             "constantly", "permanently", "rarely", "seldom", "sometimes", "never", "occasionally", "frequently",
             "usually", "nightly", "biweekly", "twice", "once"}
LIST_STOPS = {"in", "to", "at", "from", "by", "with", "on", "for", "into", "of", "that", "which", "who", "said", "says",
              "are", "is", "were", "was", "be", "been", "include", "includes", "including"}

_KIND_SPANS = {
    "person": ("person",),
    "place": ("name",),
    "date": ("date",),
    "number": ("number",),
    "duration": ("number",),
    "entity": ("name", "number", "date", "chunk"),
    "list": ("list", "chunk"),
    "reason": ("reason",),
    "frequency": ("frequency",),
    "organisation": ("name",),
}


_PLACE_CUE = re.compile(r"\b(?:in|at|from|near|into|across|outside|inside|throughout)\s+([A-Z][\w’'-]+)")


def place_names(texts) -> frozenset[str]:
    """Capitalised words the corpus itself uses as places ("in Geneva", "from Moscow"), lower-cased.

    A gazetteer drawn from the articles: it tells "Moscow" from a person without any model.
    """
    found = set()
    for text in texts:
        found.update(m.group(1).lower().replace("’", "'") for m in _PLACE_CUE.finditer(text))
    return frozenset(found - STOPWORDS)


def _strip_places(tokens: list[Token], span: Span | None, places: frozenset[str]) -> Span | None:
    """"Syria Staffan de Mistura" -> "Staffan de Mistura": a place before a name is not part of it."""
    if span is None:
        return None
    i = span.i
    while i < span.j - 1 and tokens[i].low in places:
        i += 1
    return Span(i, span.j, span.kind)


def _names_places(tokens: list[Token], span: Span, places: frozenset[str]) -> bool:
    """Only names, joined by commas and "and", at least one of them a place the corpus knows.

    "Moscow, and in Washington" counts: prepositions may repeat before each place."""
    words = [t for t in tokens[span.i : span.j] if t.word and t.low not in ("and", "or", "in", "at", "to", "from", "the")]
    return bool(words) and all(t.capitalised for t in words) and any(t.low in places for t in words)


def _is_place(tokens: list[Token], span: Span, places: frozenset[str]) -> bool:
    words = [t for t in tokens[span.i : span.j] if t.word]
    return bool(words) and all(t.low in places for t in words)


def candidates(tokens: list[Token], question: Question, places: frozenset[str] = frozenset()) -> list[Span]:
    names = _names(tokens)
    spans: list[Span] = []
    if question.kind == "person":
        people = (_strip_places(tokens, _person(tokens, s), places) for s in names if not _is_nationality(tokens, s))
        spans += [p for p in people if p and p.kind == "person" and not _is_place(tokens, p, places)
                  and not _is_nationality(tokens, p)]
        if question.target:  # "at whose request": also who or what the request is from
            spans += [w for w in _whose(tokens, question) if not any(w.i <= p.i < w.j for p in spans)]
    elif question.kind == "place":
        spans += [s for s in names if not _is_nationality(tokens, s)]
    elif question.kind == "date" and question.when == "time":
        # "At what time ...": a time of day, not the date beside it.
        spans += [s for s in _dates(tokens) if any(_RE4.fullmatch(t.low) for t in tokens[s.i : s.j])]
        spans += [Span(k, k + 1, "date") for k, t in enumerate(tokens) if t.low in ("midnight", "noon", "dawn", "dusk")]
    elif question.kind == "date" and question.when == "year":
        spans += [s for s in _dates(tokens) if any(_RE3.fullmatch(t.low) for t in tokens[s.i : s.j])]
    elif question.kind == "date":
        spans += _dates(tokens)
    elif question.kind == "organisation":
        spans += [s for s in names if not _is_place(tokens, s, places) and not _is_nationality(tokens, s)]
        spans += [Span(s.i, s.j, "name") for s in _lists(tokens, question)
                  if all(t.capitalised for t in tokens[s.i : s.j] if t.word and t.low not in ("and", "or"))]
    elif question.kind in ("number", "duration"):
        for s in _numbers(tokens):
            j = s.j
            if question.kind == "duration" and j < len(tokens) and tokens[j].low in DURATION_UNITS:
                j += 1
            spans.append(Span(s.i, j, "number"))
        if question.kind == "duration":
            spans += _durations(tokens)
    elif question.kind == "list" and question.places:
        # "Which countries ...": a list of place names; "three guarantor-countries" names none.
        spans += [s for s in _lists(tokens, question) if _names_places(tokens, s, places)]
    elif question.kind == "list":
        spans += _lists(tokens, question) + _chunks(tokens, question) + names
    elif question.kind == "reason":
        spans += _reasons(tokens, question)
    elif question.kind == "frequency":
        spans += _frequencies(tokens)
    elif question.kind == "entity":
        spans += names + _numbers(tokens) + _dates(tokens) + _chunks(tokens, question)
    return [t for t in (_trim(tokens, s, question) for s in spans) if t is not None]


def _trim(tokens: list[Token], span: Span, question: Question) -> Span | None:
    """Drop the question's own words from a phrase's edges; None when nothing new is left."""
    def echo(t: Token) -> bool:
        return (not t.word) or t.stem in question.stems or t.low in STOPWORDS or t.low == "'s"

    i, j = span.i, span.j
    if span.kind == "date":
        # "February 22" stays whole even when the question says "February"; "December 29" is no
        # answer when the question says "December 29".
        words = [t for t in tokens[span.i : span.j] if t.word]
        return None if words and all(t.stem in question.stems for t in words) else span
    keep_function_words = span.kind in ("reason", "list")  # "his role as a mediator", "the political process"
    while i < j and echo(tokens[i]) and not (span.kind == "number" and tokens[i].low in NUMBER_MODIFIERS) \
            and not (keep_function_words and tokens[i].word and tokens[i].stem not in question.stems):
        i += 1
    while j > i and echo(tokens[j - 1]):
        j -= 1
    if i >= j:
        return None
    return Span(i, j, span.kind)


_UNIT_ADJECTIVE = re.compile(r"(?:\d+|[a-z]+)-(?:second|minute|hour|day|week|month|year)s?(?:-long)?")


def _durations(tokens: list[Token]) -> list[Span]:
    """Spans of time without a numeral: "an hour", "half an hour", "two-day or three-day"."""
    spans: list[Span] = []
    n = len(tokens)
    for k, t in enumerate(tokens):
        if spans and k < spans[-1].j:
            continue  # "three-day" inside "two-day or three-day"
        if t.low in ("a", "an") and k + 1 < n and tokens[k + 1].low in DURATION_UNITS and not (
                k + 2 < n and tokens[k + 2].low in ("ago", "earlier", "later")):  # "a week ago" is a date
            i = k - 1 if k and tokens[k - 1].low == "half" else k
            spans.append(Span(i, k + 2, "number"))
        elif _UNIT_ADJECTIVE.fullmatch(t.low) and (t.low.split("-")[0] in NUMBER_WORDS or t.low[0].isdigit()):
            j = k + 1
            while j + 1 < n and tokens[j].low in ("or", "and", "to") and _UNIT_ADJECTIVE.fullmatch(tokens[j + 1].low):
                j += 2
            spans.append(Span(k, j, "number"))
    return spans


def _whose(tokens: list[Token], question: Question) -> list[Span]:
    """"At whose request": the phrase after "request of/from/by" ("the government in Damascus").

    Kept only where no person's name is found inside it: "a request from U.S. Secretary of State
    John Kerry" answers "John Kerry"."""
    spans = []
    n = len(tokens)
    for k, t in enumerate(tokens[:-2]):
        if t.matches(question.target) and tokens[k + 1].low in ("of", "from", "by"):
            j = k + 2
            while j < n and j - k <= 10 and tokens[j].low not in ("and", "to", "that", "which", "who") and (
                    tokens[j].text not in _CLAUSE_BREAKS or tokens[j].text == "." and "." in tokens[j - 1].text):  # "U.S."
                j += 1
            if j > k + 2:
                spans.append(Span(k + 2, j, "person"))
    return spans


def _frequencies(tokens: list[Token]) -> list[Span]:
    """"almost daily", "every week", "twice a month"."""
    spans = []
    for k, t in enumerate(tokens):
        if t.low in FREQUENCY:
            i = k - 1 if k and tokens[k - 1].low in {"almost", "nearly", "practically", "virtually", "very", "quite"} else k
            j = k + 1
            if t.low in {"twice", "once"} and k + 2 < len(tokens) and tokens[k + 1].low in {"a", "per", "every"}:
                j = k + 3
            spans.append(Span(i, j, "frequency"))
        elif t.low == "every" and k + 1 < len(tokens) and tokens[k + 1].low in {"day", "week", "month", "year", "morning", "evening", "night"}:
            spans.append(Span(k, k + 2, "frequency"))
    return spans


def _is_nationality(tokens: list[Token], span: Span) -> bool:
    if span.j - span.i == 1 and "-" in tokens[span.i].low:  # "Russian-U.S.": adjectives, not a place
        return all(re.search(r"(ian|ese|ish|an|i)$", p) or "." in p for p in tokens[span.i].low.split("-"))
    return span.j - span.i == 1 and re.search(r"(ian|ese|ish|an|i)$", tokens[span.i].low) is not None and tokens[span.i].low not in {"iran", "japan", "oman", "sudan", "taiwan", "pakistan", "afghanistan", "astana", "tehran", "bahrain"}


def _reasons(tokens: list[Token], question: Question) -> list[Span]:
    """A purpose or cause clause: "to regroup its forces", "because ...", "his role as ..."."""
    spans = []
    n = len(tokens)
    for k, t in enumerate(tokens):
        if t.low in {"to", "because", "since", "due", "so", "considering", "consideration"} or (t.low == "in" and k + 2 < n and tokens[k + 1].low == "order"):
            start = k + 1 if t.low in {"because", "since", "consideration", "considering"} else k
            if t.low == "to" and not (k + 1 < n and tokens[k + 1].word and tokens[k + 1].low not in STOPWORDS | {"the"}):
                continue
            j = start + 1
            while j < n and tokens[j].text not in {",", ".", ";", ":", "”", '"', ")"} and j - start < 12 \
                    and tokens[j].low not in {"and", "but", "while", "who", "which", "whereas"}:
                j += 1
            if j > start + 1:
                spans.append(Span(start, j, "reason"))
    return spans


# ---------------------------------------------------------------------------------------------
# Scoring


def _matched(tokens: list[Token], question: Question) -> list[int]:
    return [k for k, t in enumerate(tokens) if t.word and t.matches(question.stems)]


def coverage(tokens: list[Token], question: Question) -> float:
    """Share of the question's content-word weight found in the sentence."""
    total = sum(question.weights.values())
    if not total:
        return 0.0
    present = {t.stem for t in tokens}.union(*(t.parts for t in tokens))
    return sum(w for s, w in question.weights.items() if s in present) / total


def speaks(tokens: list[Token], span: Span | None) -> bool:
    """Is the phrase the speaker of a reporting verb: "Lavrov said", "said Bogdanov", "Lavrov told TASS"?"""
    if span is None or span.kind != "person":
        return False
    near = tokens[max(0, span.i - 2) : span.i] + tokens[span.j : span.j + 2]
    return any(t.low in REPORTING for t in near)


def best_span(tokens: list[Token], question: Question, places: frozenset[str] = frozenset(),
              known: dict | None = None) -> Span | None:
    """The candidate phrase nearest the question's words in the sentence, or None."""
    spans = candidates(tokens, question, places)
    if not spans:
        return None
    matched = _matched(tokens, question)
    scored = []
    for s in spans:
        if matched:
            gaps = [min(abs(m - s.i), abs(m - (s.j - 1))) for m in matched if not (s.i <= m < s.j)]
            distance = min(gaps) if gaps else 0
            proximity = sum(
                question.weights.get(tokens[m].stem, 1.0) / (1 + (s.i - m if m < s.i else max(0, m - s.j + 1)))
                for m in matched
            )
        else:
            distance, proximity = 8, 0.0
        overlap = sum(1 for t in tokens[s.i : s.j] if t.word and t.stem in question.stems)
        length = s.j - s.i
        score = proximity - 0.15 * distance - 0.6 * overlap - 0.03 * length
        if s.kind == "chunk":
            score -= 0.5
        elif s.kind == _KIND_SPANS.get(question.kind, ("",))[0]:
            score += 1.0 if s.kind == "list" else 0.5
        if s.kind == "list":
            score += 0.03 * length  # a list is long by nature
        if question.target and s.kind == "number":
            score += _count_noun_bonus(tokens, s, question)
        if s.kind == "person":
            words = [t for t in tokens[s.i : s.j] if t.word]
            score += 0.5 if len(words) >= 2 else 0.0
            score += 0.7 if s.i > 0 and tokens[s.i - 1].low in ROLE_WORDS else 0.0
        if question.kind == "place" and s.kind == "name":
            score += 0.8 if _is_place(tokens, s, places) else 0.0
            score += 1.0 if s.i == 0 and s.j < len(tokens) and tokens[s.j].text == "," and tokens[s.i].text.isupper() else 0.0  # dateline
            score += 0.6 if s.i > 0 and tokens[s.i - 1].low in {"in", "at", "from", "to", "near", "into"} else 0.0
            score -= 1.0 if any(t.low in ROLE_WORDS for t in tokens[s.i : s.j]) else 0.0
        if "name" in question.stems and s.kind == "name":
            score += 0.5
        score -= 3.0 * undescribed(tokens, s, question, known)
        if question.reported and speaks(tokens, s):
            score += 1.0
        scored.append(Span(s.i, s.j, s.kind, score))
    return max(scored, key=lambda s: s.score)


def _count_noun_bonus(tokens: list[Token], span: Span, question: Question) -> float:
    """"How many fighters": a number counting the asked noun wins; one counting another question noun loses."""
    following = [t for t in tokens[span.j : span.j + 4] if t.word][:3]
    if any(t.matches(question.target) for t in following):
        return 2.0
    if any(t.matches(question.stems - question.target) for t in following):
        return -3.0  # counts another thing the question names: "four *corridors*" for "how many people"
    if any(t.low not in STOPWORDS for t in following[:1]):
        return -1.0  # counts something else: "900 militants" for "how many civilians"
    return 0.0


TYPED = {"person", "place", "date", "number", "duration", "frequency", "list", "reason", "organisation"}


def kind_ok(span: Span | None, question: Question) -> bool:
    """Did the sentence offer a phrase of the kind the question asks for?"""
    return bool(span) and span.kind == _KIND_SPANS.get(question.kind, (span.kind,))[0]


_CLAUSE_BREAKS = {",", ";", ":", "(", ")", ".", '"', "“", "”", "—", "–", "[", "]"}


_LINKS = REPORTING | {"met", "meets", "meet", "thanked", "urged", "called", "invited", "visited", "replaced", "accused",
                     "criticized", "criticised", "praised", "phoned", "received", "hosted", "discussed", "with", "by"}


def description(tokens: list[Token], span: Span) -> set[str]:
    """Stems of the words that name a phrase: its own, its title before it, an appositive after it."""
    present: set[str] = set()

    def take(k: int) -> None:
        present.add(tokens[k].stem)
        present.update(tokens[k].parts)

    for k in range(span.i, span.j):
        take(k)
    k = span.i - 1
    # Back to the clause's start, or to a verb: "Lavrov told US Secretary of State John Kerry"
    # describes Kerry by "US Secretary of State" only.
    while k >= 0 and span.i - k <= 16 and tokens[k].text not in _CLAUSE_BREAKS and tokens[k].low not in _LINKS:
        take(k)
        k -= 1
    if span.j < len(tokens) and tokens[span.j].text == ",":
        # An appositive closes with a comma: "Alexei Borodavkin, Russia's envoy, said"; "According
        # to de Mistura, about 900 militants are active." describes the militants, not him.
        k = span.j + 1
        while k < len(tokens) and k - span.j <= 12 and tokens[k].text not in _CLAUSE_BREAKS:
            k += 1
        if k < len(tokens) and tokens[k].text == ",":
            for m in range(span.j + 1, k):
                take(m)
    return present


def _described(stem: str, present: set[str]) -> bool:
    """The stem, or a word of the same root: "ministry" describes a "minister" ("ministri"/"minist")."""
    return stem in present or len(stem) >= 5 and any(
        len(p) >= 5 and (p.startswith(stem) or stem.startswith(p)) for p in present)


def echo(tokens: list[Token], span: Span | None, question: Question) -> float:
    """Share of the question's words that describe the phrase itself: the question's own subject.

    "At whose request did Russia's defence minister send experts?" is not answered by "Russian
    Defense Minister Sergei Shoigu": the question names him to ask about someone else. "Who is
    the UN's envoy for Syria?" asks for exactly the person so described, so it never counts.
    """
    if span is None or span.kind != "person" or question.defines:
        return 0.0
    total = sum(question.weights.values())
    own = {t.stem for t in tokens[span.i : span.j]}
    words = description(tokens, span) - own
    return sum(w for s, w in question.weights.items() if s in words) / total if total else 0.0


def descriptions(sentences: list[list[Token]]) -> dict[str, set[str]]:
    """For each name in a document, keyed by its last word, the words that describe it anywhere.

    News names a person in full once ("Russian Foreign Minister Sergey Lavrov") and by surname
    after that ("Lavrov said"): a later mention inherits the first one's description.
    """
    found: dict[str, set[str]] = {}
    for tokens in sentences:
        for span in _names(tokens):
            found.setdefault(tokens[span.j - 1].low, set()).update(description(tokens, span))
    return found


def _outranked(tokens: list[Token], span: Span, question: Question) -> bool:
    """The title right before the name holds the asked office under a rank the question lacks:
    "Deputy Foreign Minister" for "foreign minister", not for "special envoy"."""
    asked = question.text.lower()
    for k in range(max(0, span.i - 4), span.i):
        if tokens[k].low in RANKS and tokens[k].low not in asked:
            return any(t.stem in question.stems for t in tokens[k + 1 : span.i])
    return False


def undescribed(tokens: list[Token], span: Span | None, question: Question, known: dict | None = None) -> float:
    """Share of the question's descriptors missing from the words that name the answer.

    "Which *American* official ...?" is not answered by "UN Special Envoy for Syria Staffan de
    Mistura" even when "a US representative" sits later in the sentence: the descriptor must be in
    the answer's own title ("Russia's Permanent Representative ... Alexei Borodavkin"), in an
    appositive right after it, or in another mention of the same name in the article (`known`).
    Nor is "Who is Russia's foreign minister?" answered by "Deputy Foreign Minister Mikhail
    Bogdanov": a rank in the title that the question lacks counts as a missing description.
    """
    if span is None or span.kind not in ("person", "name", "list"):
        return 0.0
    if span.kind == "person" and _outranked(tokens, span, question):
        return 1.0
    if not question.descriptors:
        return 0.0
    present = description(tokens, span)
    if known:
        present |= known.get(tokens[span.j - 1].low, set())
    return sum(1 for d in question.descriptors if not _described(d, present)) / len(question.descriptors)


def count_mismatch(tokens: list[Token], span: Span | None, question: Question) -> float:
    """How surely the number found counts something other than what the question asks about."""
    if not (span and span.kind == "number" and question.target):
        return 0.0
    bonus = _count_noun_bonus(tokens, span, question)
    return 1.0 if bonus <= -3 else 0.5 if bonus < 0 else 0.0


class RuleReader:
    """The rules behind the readers' interface, for side-by-side benchmarks on bare passages.

    In qa the rules also use retrieval scores and corpus-wide tables (Answerer.candidates);
    here a sentence is chosen by how much of the question it covers, then its best typed phrase.
    """

    name = "rules"

    def read_batch(self, question: str, passages, top: int = 3):
        from ..chunker import split_sentences
        from . import Span as Found

        aliases = demonyms(passages)
        places = place_names(passages) | set(aliases.values()) - {"u.s"}
        q = analyse(question, None, aliases)
        out = []
        for n, text in enumerate(passages):
            found = []
            for a, b in split_sentences(text, 0, len(text)):
                tokens = tokenize(text, a, b, aliases)
                if not tokens:
                    continue
                span = best_span(tokens, q, places)
                score = coverage(tokens, q) + (0.1 * max(-2.0, min(3.0, span.score)) if span else -0.5)
                lo, hi = (tokens[span.i].start, tokens[span.j - 1].end) if span else (a, b)
                found.append(Found(n, lo, hi, score, 0.0, sigmoid(score)))
            out.append(sorted(found, key=lambda sp: -sp.score)[:top])
        return out
