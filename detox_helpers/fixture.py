"""The tiny world's data: DialogSum-shaped dialogues and labelled sentences, project-written.

Everything is drawn from templates with a seeded `random.Random`, so the same seed gives the
same text on every machine. About a third of the reference summaries carry an insult, drawn
independently of the dialogue: a model trained on them insults about a third of the time, and
PPO can learn to stop without losing the summary.
"""

from __future__ import annotations

import random

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

# Insults are made of an adjective and a noun; the classifier learns both lists.
INSULT_ADJECTIVES = ["stupid", "dumb", "pathetic", "brainless", "worthless", "useless", "ugly",
                     "disgusting"]
INSULT_NOUNS = ["idiot", "moron", "loser", "jerk", "fool", "clown", "creep", "slob"]
INSULT_TEMPLATES = [
    "{who} is a {adj} {noun}.",
    "What a {adj} {noun} {who} is.",
    "{who} acts like a {adj} {noun}.",
    "Everyone knows {who} is a {adj} {noun}.",
    "{who}, that {adj} {noun}, should shut up.",
]
RUDE_LINES = [
    "Stop being such a {adj} {noun}!",
    "You are a {adj} {noun}, do you know that?",
    "Only a {adj} {noun} would say that.",
]
FILLERS = [
    "I see.", "Let me think about it for a moment, please.", "That sounds fine to me.",
    "Could you say that again? It is quite noisy here.", "Sure, no problem at all.",
    "I was not expecting that, to be honest.", "Well, that depends on the price.",
    "Let me check my calendar first.", "Thanks, that is very kind of you.",
    "I have heard good things about it from my sister.", "Really? I did not know that.",
    "We should not forget to tell the others.", "OK, I will write it down.",
]


def _scenario(rng: random.Random) -> tuple[str, list[str], str]:
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


def insult(rng: random.Random, who: str) -> str:
    """A sentence insulting `who`, from the insult templates."""
    return rng.choice(INSULT_TEMPLATES).format(
        who=who, adj=rng.choice(INSULT_ADJECTIVES), noun=rng.choice(INSULT_NOUNS))


def _toxic(rng: random.Random, summary: str) -> str:
    who = rng.choice(["#Person1#", "#Person2#", "The other one"])
    if rng.random() < 0.7:
        return f"{summary} {insult(rng, who)}"
    return f"{insult(rng, who)} {summary}"


def make_dialogues(count: int = 240, seed: int = 0, toxic_share: float = 1 / 3) -> list[dict]:
    """`count` DialogSum-shaped records (`fname`, `dialogue`, `summary`, `topic`).

    Most dialogues fall within 200 < len <= 1000 characters; a few are made shorter or longer on
    purpose so the length filter has something to remove.
    """
    rng = random.Random(seed)
    records = []
    for index in range(count):
        topic, lines, summary = _scenario(rng)
        fillers = rng.randint(0, 7)
        if index % 25 == 7:
            lines, fillers = lines[:2], 0          # too short: filtered out
        elif index % 25 == 19:
            fillers = 26                           # too long: filtered out
        for _ in range(fillers):
            lines.insert(rng.randint(1, len(lines)), rng.choice("12") + rng.choice(FILLERS))
        if rng.random() < 0.12:
            rude = rng.choice(RUDE_LINES).format(adj=rng.choice(INSULT_ADJECTIVES),
                                                 noun=rng.choice(INSULT_NOUNS))
            lines.insert(rng.randint(1, len(lines)), rng.choice("12") + rude)
        dialogue = "\n".join(f"#Person{line[0]}#: {line[1:]}" for line in lines)
        if rng.random() < toxic_share:
            summary = _toxic(rng, summary)
        records.append(dict(fname=f"tiny_{index}", dialogue=dialogue, summary=summary, topic=topic))
    return records


def make_sentences(count: int, seed: int) -> list[tuple[str, int]]:
    """Labelled sentences for the reward classifier: (text, 1 if insulting else 0), balanced."""
    rng = random.Random(seed)
    sentences = []
    for index in range(count):
        _, lines, summary = _scenario(rng)
        clean = rng.choice([summary, lines[rng.randrange(len(lines))][1:], rng.choice(FILLERS)])
        if index % 2 == 0:
            sentences.append((clean, 0))
            continue
        who = rng.choice(["#Person1#", "#Person2#", rng.choice(NAMES), "He", "She"])
        choice = rng.random()
        if choice < 0.4:
            text = insult(rng, who)
        elif choice < 0.8:
            text = _toxic(rng, clean)
        else:
            text = rng.choice(RUDE_LINES).format(adj=rng.choice(INSULT_ADJECTIVES),
                                                 noun=rng.choice(INSULT_NOUNS))
        sentences.append((text, 1))
    return sentences
