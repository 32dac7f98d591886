"""The tiny world's data: DialogSum-shaped dialogues, and texts graded for the reward model.

Everything is drawn from templates with a seeded `random.Random`, so the same seed gives the
same text on every machine. About a third of the reference summaries carry an insult (half of
them mild, half strong), drawn independently of the dialogue and placed before or after the
summary proper: a model trained on them insults about a third of the time, and PPO can learn to
stop without losing, or much shortening, the summary. The dialogues themselves are clean, so a
prompt followed by a clean summary is clean too.
"""

from __future__ import annotations

import random
import re

from ..settings import PROMPT_TEMPLATE
from .insults import MILD_WORDS, STRONG_ADJECTIVES, STRONG_NOUNS, target_toxicity

NAMES = ["Anna", "Ben", "Carlos", "Dana", "Emma", "Frank", "Grace", "Hugo", "Iris", "Jack",
         "Kate", "Liam", "Mia", "Noah", "Olga", "Paul", "Rosa", "Sam", "Tina", "Victor"]
ITEMS = ["jacket", "lamp", "bicycle", "phone", "kettle", "backpack", "umbrella", "watch",
         "camera", "sofa"]
PLACES = ["museum", "station", "library", "bakery", "harbour", "stadium", "market", "park"]
CITIES = ["Paris", "Rome", "Lisbon", "Berlin", "Vienna", "Oslo", "Madrid", "Prague"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TIMES = ["nine o'clock", "noon", "three o'clock", "six o'clock", "eight o'clock"]
JOBS = ["teacher", "driver", "cook", "nurse", "designer", "clerk"]
SYMPTOMS = ["headache", "sore throat", "bad cough", "back pain", "fever"]
COLORS = ["red", "blue", "green", "black", "white", "yellow"]

FILLERS = [
    "I see.", "Let me think about it for a moment, please.", "That sounds fine to me.",
    "Could you say that again? It is quite noisy here.", "Sure, no problem at all.",
    "I was not expecting that, to be honest.", "Well, that depends on the price.",
    "Let me check my calendar first.", "Thanks, that is very kind of you.",
    "I have heard good things about it from my sister.", "Really? I did not know that.",
    "We should not forget to tell the others.", "OK, I will write it down.",
]


def scenario(rng: random.Random) -> tuple[str, list[str], str]:
    """One topic, its core lines (speaker-prefixed) and its clean summary."""
    name, item, place = rng.choice(NAMES), rng.choice(ITEMS), rng.choice(PLACES)
    day, time, city = rng.choice(DAYS), rng.choice(TIMES), rng.choice(CITIES)
    price, count = rng.randint(10, 90), rng.randint(2, 8)
    kind = rng.randrange(8)
    if kind == 0:
        color = rng.choice(COLORS)
        return "shopping", [
            "1Good morning, can I help you?",
            f"2Yes, I am looking for a {item} for my brother.",
            f"1We have this {color} {item}. It costs {price} dollars.",
            "2That is a bit expensive, but it looks good.",
            "1It is very popular this season.",
            "2All right, I will take it.",
        ], f"#Person2# buys a {color} {item} for {price} dollars."
    if kind == 1:
        return "booking a table", [
            "1Hello, this is the Garden Restaurant.",
            f"2Hi, I would like to book a table for {count} people on {day}.",
            "1What time would you like to come?",
            f"2At {time}, please. My name is {name}.",
            f"1A table for {count} at {time} on {day}. See you then, {name}.",
        ], f"{name} books a table for {count} people at {time} on {day}."
    if kind == 2:
        return "asking the way", [
            f"1Excuse me, how do I get to the {place}?",
            f"2Take bus number {count} and get off at the third stop.",
            "1Is it far from the bus stop?",
            f"2No, the {place} is just around the corner.",
            "1Thank you very much.",
        ], f"#Person1# asks the way to the {place} and #Person2# says to take bus {count}."
    if kind == 3:
        symptom = rng.choice(SYMPTOMS)
        return "see a doctor", [
            "1What seems to be the problem today?",
            f"2I have had a {symptom} since {day}.",
            "1Have you taken any medicine?",
            "2No, I wanted to ask you first.",
            f"1Rest for {count} days and drink plenty of water.",
        ], f"#Person2# has a {symptom} and the doctor tells #Person2# to rest for {count} days."
    if kind == 4:
        job = rng.choice(JOBS)
        return "job interview", [
            f"1Good afternoon, {name}. Please sit down.",
            f"2Thank you. I am here for the job as a {job}.",
            "1How many years of experience do you have?",
            f"2I have worked as a {job} for {count} years.",
            f"1Good. We will call you on {day}.",
        ], f"{name} has an interview for a job as a {job} and will hear back on {day}."
    if kind == 5:
        return "travel plans", [
            f"1Shall we go to {city} on {day}?",
            "2Good idea. How long should we stay?",
            f"1Maybe {count} days. I want to see the {place}.",
            "2I will look for train tickets tonight.",
        ], (f"#Person1# and #Person2# plan a trip to {city} for {count} days "
            f"and will visit the {place}.")
    if kind == 6:
        return "hotel check-in", [
            "1Welcome to the hotel. Do you have a reservation?",
            f"2Yes, under the name {name}, for {count} nights.",
            "1Here is your key. Breakfast starts at seven.",
            "2Is there a lift to the room?",
            "1Yes, it is on the left.",
        ], f"{name} checks into a hotel for {count} nights."
    return "returning an item", [
        f"2Hello, I bought this {item} on {day} and it is broken.",
        "1I am sorry to hear that. Do you have the receipt?",
        "2Yes, here it is.",
        f"1Then I can give you back your {price} dollars.",
        "2Thank you, that is fair.",
    ], f"#Person2# returns a broken {item} and gets {price} dollars back."


NAME_SET = frozenset(NAMES)
FACT_WORDS = frozenset(w.lower() for group in (NAMES, ITEMS, PLACES, CITIES, DAYS, JOBS, COLORS)
                       for w in group)


def insult_phrase(rng: random.Random, strong: bool) -> str:
    """A mild insult is one word ("lazy"); a strong one an adjective and a noun ("stupid jerk")."""
    if strong:
        return f"{rng.choice(STRONG_ADJECTIVES)} {rng.choice(STRONG_NOUNS)}"
    return rng.choice(MILD_WORDS)


def insulting(rng: random.Random, summary: str, strong: bool | None = None) -> str:
    """`summary` with an insult before it ("Lazy Liam books ...") or after it ("... So lazy.");
    mild or strong as asked, else either, evenly."""
    strong = rng.random() < 0.5 if strong is None else strong
    phrase = insult_phrase(rng, strong)
    if rng.random() < 0.6:
        return f"{phrase.capitalize()} {summary}"
    return f"{summary} {'What a' if strong else 'So'} {phrase}."


def _dialogue(rng: random.Random, lines: list[str], fillers: int) -> str:
    lines = list(lines)
    for _ in range(fillers):
        lines.insert(rng.randint(1, len(lines)), rng.choice("12") + rng.choice(FILLERS))
    return "\n".join(f"#Person{line[0]}#: {line[1:]}" for line in lines)


def make_dialogues(count: int = 240, seed: int = 0, toxic_share: float = 1 / 3) -> list[dict]:
    """`count` DialogSum-shaped records (`fname`, `dialogue`, `summary`, `topic`).

    Most dialogues fall within 200 < len <= 1000 characters; a few are made shorter or longer on
    purpose so the length filter has something to remove.
    """
    rng = random.Random(seed)
    records = []
    for index in range(count):
        topic, lines, summary = scenario(rng)
        fillers = rng.randint(0, 7)
        if index % 25 == 7:
            lines, fillers = lines[:2], 0          # too short: filtered out
        elif index % 25 == 19:
            fillers = 26                           # too long: filtered out
        dialogue = _dialogue(rng, lines, fillers)
        if rng.random() < toxic_share:
            summary = insulting(rng, summary)
        records.append(dict(fname=f"tiny_{index}", dialogue=dialogue, summary=summary, topic=topic))
    return records


def names(text: str) -> set[str]:
    """The people that `text` names."""
    return {w for w in re.findall(r"[A-Za-z]+", text) if w in NAME_SET}


def facts(text: str) -> set[str]:
    """The names, items, places, days, jobs, colours and numbers that `text` mentions."""
    words = re.findall(r"[A-Za-z]+|\d+", text)
    return {w.lower() for w in words if w.isdigit() or w.lower() in FACT_WORDS}


# --- texts for the reward model: what PPO may write, clean or not, graded ---

def _base_text(rng: random.Random) -> str:
    """A clean text of one of the shapes the classifier will read: a summary, a line, a
    dialogue, a whole prompt, or a prompt followed by its summary (`prompt+summary`)."""
    _, lines, summary = scenario(rng)
    shape = rng.random()
    if shape < 0.35:
        return summary
    if shape < 0.45:
        return rng.choice([line[1:] for line in lines] + FILLERS)
    dialogue = _dialogue(rng, lines, rng.randint(0, 7))
    if shape < 0.55:
        return dialogue
    prompt = PROMPT_TEMPLATE.format(dialogue=dialogue)
    return prompt if shape < 0.7 else f"{prompt} {summary}"


def _pieces(text: str) -> tuple[str, list[str]]:
    """Leading space, and each word with the space after it: joined, they give `text` back, so
    edits keep a prompt's line breaks (a classifier must not learn "line breaks mean clean")."""
    lead = text[:len(text) - len(text.lstrip())]
    return lead, re.findall(r"\S+\s*", text)


def garble(rng: random.Random, text: str) -> str:
    """What a policy under pressure writes: words cut, repeated, dropped or shuffled."""
    lead, words = _pieces(text)
    if len(words) < 2:
        return text
    how = rng.randrange(5)
    if how == 0:                                        # stops early
        words = words[:rng.randint(1, len(words) - 1)]
    elif how == 1:                                      # a word stutters
        at = rng.randrange(len(words))
        words[at:at] = [words[at].rstrip() + " "] * rng.randint(1, 3)
    elif how == 2:                                      # words go missing
        words = [w for w in words if rng.random() > 0.25] or words[:1]
    elif how == 3:                                      # a stretch is shuffled
        at = rng.randrange(len(words))
        stretch = words[at:at + rng.randint(2, 8)]
        rng.shuffle(stretch)
        words[at:at + len(stretch)] = stretch
    else:                                               # a word is cut and glued
        at = rng.randrange(len(words))
        word = words[at].rstrip()
        words[at] = word[:rng.randint(1, max(1, len(word) - 1))] + \
            rng.choice(["ut", "s", "ed", "e"]) + words[at][len(word):]
    return (lead + "".join(words)).rstrip()


def insert_insult(rng: random.Random, text: str) -> str:
    """An insult anywhere: between any two words, as the fixture's summaries place it, or alone,
    in lower or upper case; in a long text mostly towards its end (where a summary sits)."""
    lead, words = _pieces(text)
    strong = rng.random() < 0.5
    phrase = insult_phrase(rng, strong)
    if strong and rng.random() < 0.4:                   # half of a strong phrase alone
        phrase = rng.choice(phrase.split())
    if rng.random() < 0.3:
        phrase = phrase.capitalize()
    low = len(words) // 2 if len(words) > 40 and rng.random() < 0.7 else 0
    at = rng.randint(low, len(words))
    if at == len(words) and words:                      # after the last word: keep a space
        words[-1] = words[-1].rstrip() + " "
    return (lead + "".join(words[:at] + [phrase + " "] + words[at:])).rstrip()


def make_classifier_texts(count: int, seed: int) -> list[tuple[str, float]]:
    """(text, target toxicity) pairs: half clean, half with one to three insults; a third of
    each garbled. The target is the graded truth of `insults.target_toxicity`."""
    rng = random.Random(seed)
    texts = []
    for index in range(count):
        text = _base_text(rng)
        if index % 2:
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                text = insert_insult(rng, text)
        if rng.random() < 1 / 3:
            text = garble(rng, text)
        texts.append((text, target_toxicity(text)))
    return texts
