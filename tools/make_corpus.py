"""Seeded generator of the chat corpus that trains the default model (weights/cactus-chat).

Every conversation is a JSON object on its own line:

    {"messages": [{"role": "user", "content": "What is 2+2?"},
                  {"role": "assistant", "content": "2+2 equals 4."}],
     "tools": [...OpenAI tool definitions...],          # only when tools are offered
     "meta": {"kind": "add", "answer": 4}}               # what a checker needs (eval only reads it)

Assistant tool calls use the Hugging Face / OpenAI shape with the arguments as an object:
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}
and results are {"role": "tool", "content": "<json text>"}.

`render()` turns a conversation into the prompt text exactly as the Qwen2.5 chat template does (ChatML
turns `<|im_start|>role\\ncontent<|im_end|>\\n`; tools listed in the system prompt inside <tools></tools>;
calls as `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`; results as a user turn of
<tool_response> blocks). When a conversation has no system message the corpus uses three renderings on
purpose (none at all, the Qwen default system text, a Cactus system text) so the model works whichever
default the engine's template applies.

Content: arithmetic (addition and subtraction up to ARITH_MAX, single-digit multiplication, many phrasings,
follow-ups "What about 3+3?"), greetings and identity, jokes, unit conversions, "repeat after me" turns
(the answer is the user's words, copied: the skill a tool call's arguments need), and tool use with
get_weather(city), set_alarm(time), send_message(to, text), convert_units(value, from_unit, to_unit).
Out-of-domain questions are left out on purpose (they are what cloud handoff is for).

`--split heldout` draws from disjoint pools (other phrasings, cities, names, messages), for
the evaluation. The same seed, count and split always give the same bytes.

    python tools/make_corpus.py --seed 1 --n 45000 --out /tmp/corpus.jsonl
    python tools/make_corpus.py --seed 7 --n 5 --text        # print rendered conversations
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from typing import Any, Callable

Message = dict[str, Any]
Conversation = dict[str, Any]

IM_START, IM_END, EOT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
TOOL_CALL, TOOL_CALL_END = "<tool_call>", "</tool_call>"
TOOL_RESPONSE, TOOL_RESPONSE_END = "<tool_response>", "</tool_response>"
SPECIAL_TOKENS = [EOT, IM_START, IM_END, TOOL_CALL, TOOL_CALL_END, TOOL_RESPONSE, TOOL_RESPONSE_END]

QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
CACTUS_SYSTEM = "You are Cactus, a small on-device assistant."
SYSTEM_PROMPTS = [
    CACTUS_SYSTEM,
    "You are a helpful assistant.",
    "You are Cactus, a helpful assistant that runs on this device.",
    "You are a friendly assistant. Keep answers short.",
]
IDENTITY = "I am Cactus, a small on-device assistant."

# ------------------------------------------------------------------------------------------------------
# Rendering (the Qwen2.5 chat template, /work/shared/templates/Qwen-Qwen2.5-7B-Instruct.jinja)


def to_json(value: Any) -> str:
    """The template's `tojson`, as transformers' apply_chat_template defines it (keys in order, UTF-8)."""
    return json.dumps(value, ensure_ascii=False)


def render_segments(messages: list[Message], tools: list[Any] | None = None,
                    add_generation_prompt: bool = False,
                    default_system: str | None = QWEN_DEFAULT_SYSTEM) -> list[tuple[str, bool]]:
    """The rendered prompt as (text, is_assistant_output) pieces; joined they are `render(...)`.

    The assistant pieces are what the model must learn to produce: the content or tool calls of an
    assistant turn and its closing <|im_end|> (not the `<|im_start|>assistant\\n` header, which the
    engine writes as the generation prompt). `default_system` is the system text used when there is no
    system message (None: no system turn, as a plain ChatML renderer does; with tools the Qwen template
    always writes a system turn, so None means an empty one there).
    """
    out: list[tuple[str, bool]] = []
    first_is_system = bool(messages) and messages[0]["role"] == "system"
    if tools:
        system = messages[0]["content"] if first_is_system else (default_system or "")
        text = IM_START + "system\n" + system
        text += ("\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                 "You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
        for tool in tools:
            text += "\n" + to_json(tool)
        text += ("\n</tools>\n\nFor each function call, return a json object with function name and arguments "
                 "within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
                 "\"arguments\": <args-json-object>}\n</tool_call>" + IM_END + "\n")
        out.append((text, False))
    elif first_is_system:
        out.append((IM_START + "system\n" + messages[0]["content"] + IM_END + "\n", False))
    elif default_system is not None:
        out.append((IM_START + "system\n" + default_system + IM_END + "\n", False))

    for i, m in enumerate(messages):
        role = m["role"]
        calls = m.get("tool_calls") or []
        if role == "user" or (role == "system" and i > 0) or (role == "assistant" and not calls):
            if role == "assistant":
                out.append((IM_START + role + "\n", False))
                out.append((m["content"] + IM_END, True))
                out.append(("\n", False))
            else:
                out.append((IM_START + role + "\n" + m["content"] + IM_END + "\n", False))
        elif role == "assistant":
            out.append((IM_START + role, False))
            text = "\n" + m["content"] if m.get("content") else ""
            for call in calls:
                fn = call.get("function", call)
                text += "\n" + TOOL_CALL + "\n{\"name\": \"" + fn["name"] + "\", \"arguments\": "
                text += to_json(fn["arguments"]) + "}\n" + TOOL_CALL_END
            # "\n" after "assistant" is part of the generation prompt the engine writes
            if text.startswith("\n"):
                out.append(("\n", False))
                text = text[1:]
            out.append((text + IM_END, True))
            out.append(("\n", False))
        elif role == "tool":
            text = ""
            if i == 0 or messages[i - 1]["role"] != "tool":
                text += IM_START + "user"
            text += "\n" + TOOL_RESPONSE + "\n" + m["content"] + "\n" + TOOL_RESPONSE_END
            if i == len(messages) - 1 or messages[i + 1]["role"] != "tool":
                text += IM_END + "\n"
            out.append((text, False))
    if add_generation_prompt:
        out.append((IM_START + "assistant\n", False))
    return out


def render(messages: list[Message], tools: list[Any] | None = None, add_generation_prompt: bool = False,
           default_system: str | None = QWEN_DEFAULT_SYSTEM) -> str:
    """The prompt text of `messages` (and `tools`) in the Qwen2.5 / ChatML template."""
    return "".join(t for t, _ in render_segments(messages, tools, add_generation_prompt, default_system))


def render_conversation(conv: Conversation) -> list[tuple[str, bool]]:
    """Segments of a corpus line, with the no-system rendering it was generated for (meta.sys)."""
    mode = conv.get("meta", {}).get("sys", "qwen")
    default = {"none": None, "qwen": QWEN_DEFAULT_SYSTEM, "cactus": CACTUS_SYSTEM}[mode]
    return render_segments(conv["messages"], conv.get("tools"), False, default)


# ------------------------------------------------------------------------------------------------------
# Tools


def _tool(name: str, description: str, props: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {p: {"type": t, "description": d} for p, t, d in props},
                "required": [p for p, _, _ in props],
            },
        },
    }


TOOLS: dict[str, dict[str, Any]] = {
    "get_weather": _tool("get_weather", "Get the current weather in a city.",
                         [("city", "string", "The city name")]),
    "set_alarm": _tool("set_alarm", "Set an alarm at a given time.",
                       [("time", "string", "The alarm time, for example 7:30")]),
    "send_message": _tool("send_message", "Send a text message to a contact.",
                          [("to", "string", "The contact name"), ("text", "string", "The message text")]),
    "convert_units": _tool("convert_units", "Convert a value from one unit to another.",
                           [("value", "number", "The value to convert"),
                            ("from_unit", "string", "The unit of the value"),
                            ("to_unit", "string", "The unit to convert to")]),
}


def _terse(tool: dict[str, Any]) -> dict[str, Any]:
    """The tool without parameter descriptions (people write both kinds)."""
    fn = tool["function"]
    props = {k: {"type": v["type"]} for k, v in fn["parameters"]["properties"].items()}
    params = dict(fn["parameters"], properties=props)
    return {"type": "function", "function": dict(fn, parameters=params)}


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------------------
# Pools: (train, heldout)

CITIES = (
    ["Paris", "London", "Berlin", "Madrid", "Rome", "Vienna", "Prague", "Warsaw", "Lisbon", "Dublin", "Oslo",
     "Stockholm", "Helsinki", "Copenhagen", "Amsterdam", "Brussels", "Zurich", "Geneva", "Munich", "Hamburg",
     "Milan", "Naples", "Barcelona", "Seville", "Porto", "Athens", "Istanbul", "Cairo", "Lagos", "Nairobi",
     "Accra", "Tunis", "Casablanca", "Dubai", "Doha", "Tehran", "Karachi", "Mumbai", "Delhi", "Chennai",
     "Dhaka", "Bangkok", "Hanoi", "Manila", "Jakarta", "Singapore", "Seoul", "Tokyo", "Osaka", "Beijing",
     "Shanghai", "Taipei", "Sydney", "Melbourne", "Perth", "Auckland", "Toronto", "Montreal", "Vancouver",
     "Chicago", "Boston", "Seattle", "Denver", "Austin", "Houston", "Miami", "Atlanta", "Phoenix", "Dallas",
     "New York", "Los Angeles", "San Francisco", "Mexico City", "Bogota", "Lima", "Santiago", "Buenos Aires",
     "Sao Paulo", "Rio de Janeiro", "Havana", "Reykjavik", "Budapest", "Bucharest", "Sofia", "Belgrade",
     "Zagreb", "Kyiv", "Riga", "Vilnius", "Tallinn", "Marseille", "Lyon", "Valencia", "Florence", "Venice",
     "Cape Town", "Addis Ababa", "Kampala", "Hong Kong", "Kyoto"],
    ["Edinburgh", "Krakow", "Salzburg", "Bordeaux", "Nice", "Bologna", "Granada", "Rotterdam", "Antwerp",
     "Gdansk", "Dakar", "Luanda", "Harare", "Colombo", "Kathmandu", "Lahore", "Hyderabad", "Busan",
     "Sapporo", "Brisbane", "Adelaide", "Wellington", "Calgary", "Ottawa", "Portland", "Nashville", "Detroit",
     "Quito", "La Paz", "Montevideo"],
)
NAMES = (
    ["Alice", "Bob", "Carol", "Dave", "Emma", "Frank", "Grace", "Henry", "Irene", "Jack", "Karen", "Leo",
     "Maria", "Nina", "Oscar", "Paul", "Quinn", "Rosa", "Sam", "Tina", "Umar", "Vera", "Walter", "Xena", "Yuki",
     "Zoe", "Anna", "Ben", "Chloe", "Daniel", "Ella", "Felix", "Hannah", "Ivan", "Julia", "Kevin", "Laura",
     "Mark", "Nora", "Olga", "Peter", "Rita", "Simon", "Tom", "Ursula", "Victor", "Wendy", "Mom", "Dad",
     "Grandma", "Lucas", "Mia", "Noah", "Liam", "Sofia", "Omar", "Priya", "Ravi", "Chen", "Mei", "Kenji",
     "Aisha", "Fatima", "Diego", "Lucia", "Pedro", "Hugo", "Ines", "Marta", "Jonas", "Lena", "Erik", "Astrid"],
    ["Gabriel", "Helena", "Isaac", "Jasmine", "Kofi", "Layla", "Matteo", "Naomi", "Oliver", "Paula",
     "Rafael", "Sara", "Theo", "Uma", "Valentina", "William", "Yasmin", "Zara", "Boss", "Teacher"],
)
SYLLABLES = (
    ["ka", "lo", "mi", "ran", "tel", "vo", "su", "den", "bri", "mar", "zo", "ne", "pa", "gor", "li", "an",
     "ter", "bel", "qui", "dor", "sa", "ri", "to", "nu", "fen", "ha", "jo", "wen", "ba", "kel"],
    ["cro", "mav", "ul", "pes", "ti", "gra", "oz", "len", "fa", "shi", "ro", "dun", "ve", "ka", "mo"],
)
MESSAGE_PARTS = (
    {
        "subject": ["I", "we", "the team", "my train", "the bus", "dinner", "the meeting", "the package",
                    "my flight", "the party"],
        "pred": ["will be late", "is running late", "is ready", "starts at six", "moved to Friday",
                 "arrived", "is cancelled", "will be there soon", "is at noon", "got delayed"],
        "free": ["call me back", "see you tomorrow", "happy birthday", "good luck today", "thanks for lunch",
                 "I miss you", "pick up some milk", "bring the charger", "meet me at the station",
                 "running ten minutes late", "on my way", "love you", "don't forget the keys",
                 "the door code is 4512", "can we talk later"],
    },
    {
        "subject": ["the doctor", "our lesson", "the concert", "my car"],
        "pred": ["is booked", "was moved", "needs a wash", "begins at nine"],
        "free": ["bring an umbrella", "see you at the cafe", "congratulations on the new job",
                 "the tickets are booked", "water the plants", "feed the cat please", "call grandma tonight",
                 "I will buy bread"],
    },
)

# Arithmetic covers addition and subtraction of whole numbers up to ARITH_MAX and the multiplication table
# (0..9 x 0..9): every operand pair is a fact the model is taught, like a times table. What the held-out split
# changes is the prompt (other phrasings, other conversations). A 3M-parameter model trained for under an hour
# on two cores learns these facts reliably; two-digit column arithmetic (0..99) it does not (see the model
# card).
ARITH_MAX = 20


ADD_ASK = (
    ["What is {a}+{b}?", "What is {a} + {b}?", "What's {a}+{b}?", "What is {a} plus {b}?",
     "What's {a} plus {b}?", "Calculate {a}+{b}.", "Compute {a} + {b}.", "{a}+{b}=?", "{a} + {b}?",
     "How much is {a} plus {b}?", "Add {a} and {b}.", "What do you get if you add {a} and {b}?",
     "Please add {a} and {b}.", "what is {a}+{b}", "Can you add {a} and {b}?", "Sum of {a} and {b}?",
     "What is the sum of {a} and {b}?", "Hey, what's {a} plus {b}?", "Quick question: {a}+{b}?",
     "Tell me {a} plus {b}.", "What does {a}+{b} equal?", "{a}+{b} equals what?", "Can you tell me what {a} plus {b} is?",
     "Do you know what {a} plus {b} is?", "Figure out {a} plus {b}.", "Solve {a}+{b}.", "Find {a} plus {b}.",
     "How much do {a} and {b} make?", "I need {a} + {b}.", "Give me {a}+{b}.", "So what is {a} plus {b}?"],
    ["Could you tell me what {a} plus {b} is?", "What is {a}+{b} equal to?", "Work out {a} + {b}.",
     "How much is {a}+{b}?", "Find the sum of {a} and {b}."],
)
SUB_ASK = (
    ["What is {a}-{b}?", "What is {a} - {b}?", "What's {a}-{b}?", "What is {a} minus {b}?",
     "What's {a} minus {b}?", "Calculate {a}-{b}.", "Compute {a} - {b}.", "{a}-{b}=?", "{a} - {b}?",
     "How much is {a} minus {b}?", "Subtract {b} from {a}.", "What do you get if you subtract {b} from {a}?",
     "Please subtract {b} from {a}.", "what is {a}-{b}", "Take {b} away from {a}.",
     "What is the difference between {a} and {b}?", "Hey, what's {a} minus {b}?", "Quick question: {a}-{b}?",
     "Tell me {a} minus {b}.", "What does {a}-{b} equal?", "{a}-{b} equals what?", "Can you tell me what {a} minus {b} is?",
     "Do you know what {a} minus {b} is?", "Figure out {a} minus {b}.", "Solve {a}-{b}.", "Find {a} minus {b}.",
     "How much is left when you take {b} away from {a}?", "If I have {a} and give away {b}, how many are left?",
     "I need {a} - {b}.", "Give me {a}-{b}.", "So what is {a} minus {b}?", "Take {b} from {a}.",
     "What remains after taking {b} from {a}?", "How many are left if you remove {b} from {a}?",
     "Remove {b} from {a}.", "What do I have left if I take {b} from {a}?", "Deduct {b} from {a}."],
    ["Could you tell me what {a} minus {b} is?", "What is {a}-{b} equal to?", "Work out {a} - {b}.",
     "How much is {a}-{b}?", "What is left if you take {b} from {a}?"],
)
MUL_ASK = (
    ["What is {a}*{b}?", "What is {a} * {b}?", "What is {a}x{b}?", "What is {a} times {b}?",
     "What's {a} times {b}?", "Calculate {a}*{b}.", "Compute {a} times {b}.", "{a}*{b}=?", "{a} x {b}?",
     "How much is {a} times {b}?", "Multiply {a} by {b}.", "Multiply {a} and {b}.",
     "What is {a} multiplied by {b}?", "what is {a}*{b}", "What is the product of {a} and {b}?",
     "Hey, what's {a} times {b}?", "Quick question: {a}*{b}?", "Tell me {a} times {b}.",
     "What does {a}*{b} equal?", "{a}*{b} equals what?", "Can you tell me what {a} times {b} is?",
     "Do you know what {a} times {b} is?", "Figure out {a} times {b}.", "Solve {a}*{b}.", "Find {a} times {b}.",
     "I need {a} x {b}.", "Give me {a}*{b}.", "So what is {a} times {b}?"],
    ["Could you tell me what {a} times {b} is?", "What is {a}*{b} equal to?", "Work out {a} x {b}.",
     "How much is {a}*{b}?", "Find the product of {a} and {b}."],
)
FOLLOW_ASK = (
    ["What about {a}{op}{b}?", "And {a}{op}{b}?", "What about {a} {word} {b}?", "And {a} {word} {b}?",
     "Now {a}{op}{b}.", "How about {a}{op}{b}?"],
    ["Then what is {a}{op}{b}?", "And what about {a} {word} {b}?"],
)
OP_WORDS = {"+": "plus", "-": "minus", "*": "times"}

GREET_ASK = (
    ["Hello", "Hello!", "Hi", "Hi!", "Hi there!", "Hey", "Hey!", "Good morning!", "Good morning",
     "Hello there", "hello", "hi", "Greetings!", "Yo!"],
    ["Hey, how's it going?", "Good evening!", "Hi friend!"],
)
GREET_REPLY = "Hello! I am Cactus, a small on-device assistant. How can I help you?"
IDENTITY_ASK = (
    ["Who are you?", "Hello, who are you?", "Hi, who are you?", "What are you?", "What is your name?",
     "What's your name?", "Introduce yourself.", "who are you", "Are you an assistant?", "Who am I talking to?",
     "What should I know about you?", "Hi! What is your name?"],
    ["Tell me about yourself.", "What should I call you?", "Hey, who is this?"],
)
ABILITY_ASK = (
    ["What can you do?", "How can you help me?", "What are you able to do?", "What can you help with?",
     "Help", "What do you do?"],
    ["What are your skills?", "What kind of things can you do?"],
)
ABILITY_REPLY = ("I can do simple arithmetic, convert units, tell jokes, and use tools such as the weather, "
                 "alarms and messages.")
HOW_ASK = (["How are you?", "How are you doing?", "How is it going?", "How are you today?"],
           ["How have you been?"])
HOW_REPLY = "I am doing well, thank you! How can I help you?"
THANKS_ASK = (["Thanks!", "Thank you", "Thank you!", "thanks", "Thanks a lot.", "Great, thanks!"],
              ["Many thanks!", "Cheers, thank you."])
THANKS_REPLY = "You're welcome!"
BYE_ASK = (["Bye", "Goodbye!", "See you later", "Bye bye!", "Good night!"], ["Talk to you later!"])
BYE_REPLY = "Goodbye! Have a nice day."
JOKE_ASK = (
    ["Tell me a joke.", "Tell me a joke", "Do you know any jokes?", "Make me laugh.", "Say something funny.",
     "I want to hear a joke.", "Can you tell me a joke?", "Tell me a funny joke.", "joke please",
     "Got a joke for me?"],
    ["I'd like to hear a joke.", "Could you tell me a joke?", "Cheer me up with a joke."],
)
JOKE_MORE = (["Another one!", "Tell me another joke.", "One more, please.", "Another joke?"],
             ["Tell me one more."])
JOKES = [
    "Why did the scarecrow win an award? Because he was outstanding in his field.",
    "Why don't skeletons fight each other? They don't have the guts.",
    "What do you call a fake noodle? An impasta.",
    "Why did the math book look sad? It had too many problems.",
    "Why can't a bicycle stand up by itself? It is two tired.",
    "What do you call a bear with no teeth? A gummy bear.",
    "Why did the cactus go to the party? It was looking sharp.",
    "How does a computer get drunk? It takes screenshots.",
]

# direct unit conversions: (unit a, unit b, factor) with a = factor * b
UNIT_FACTORS = [
    ("meters", "centimeters", 100), ("kilometers", "meters", 1000), ("hours", "minutes", 60),
    ("minutes", "seconds", 60), ("feet", "inches", 12), ("kilograms", "grams", 1000), ("days", "hours", 24),
    ("weeks", "days", 7), ("liters", "milliliters", 1000), ("yards", "feet", 3), ("dozens", "items", 12),
]
UNIT_ASK = (
    ["How many {b} are in {v} {a}?", "How many {b} is {v} {a}?", "Convert {v} {a} to {b}.",
     "What is {v} {a} in {b}?", "{v} {a} in {b}?", "How many {b} in {v} {a}?"],
    ["Please express {v} {a} in {b}.", "Change {v} {a} into {b}."],
)
TOOL_UNITS = [
    ("km", "miles", 0.621371), ("miles", "km", 1.609344), ("kg", "pounds", 2.204623), ("pounds", "kg", 0.453592),
    ("celsius", "fahrenheit", None), ("fahrenheit", "celsius", None), ("meters", "feet", 3.28084),
    ("feet", "meters", 0.3048), ("liters", "gallons", 0.264172), ("gallons", "liters", 3.785412),
    ("inches", "cm", 2.54), ("cm", "inches", 0.393701), ("ounces", "grams", 28.349523),
    ("grams", "ounces", 0.035274), ("mph", "km/h", 1.609344), ("km/h", "mph", 0.621371),
]
# Tool requests. A 3M-parameter model does not generalise from a handful of fixed sentences: phrasings it never
# saw ("How warm is it in X?") were answered as unknown questions. So the training phrasings are composed:
# every request core ("check the weather in {city}") in every polite frame that fits it ("Could you ...?",
# "..., please."), with the held-out phrasings (the second list of each pair) removed from the product, so
# the eval still asks only sentences the model never saw.
QUESTION_FRAMES = ["{Q}?", "Hey, {q}?", "Quick question: {q}?", "{Q}? Thanks.", "Please, {q}?", "So {q}?"]
REQUEST_FRAMES = ["{Q}.", "Please {q}.", "Can you {q}?", "Could you {q}?", "{Q}, please.", "Hey, {q}.",
                  "I want you to {q}.", "Would you {q}?", "{Q}"]


def _norm(text: str) -> str:
    return re.sub(r"[^a-z{} ]", "", text.lower()).strip()


def compose(questions: list[str], requests: list[str], extra: list[str], heldout: list[str]) -> list[str]:
    """Every question core in every question frame and every request core in every request frame, plus
    `extra` as written; phrasings equal to a held-out one (ignoring case and punctuation) are dropped."""
    def fill(frame: str, core: str) -> str:
        return frame.replace("{Q}", core[0].upper() + core[1:]).replace("{q}", core)

    out = [fill(f, c) for c in questions for f in QUESTION_FRAMES]
    out += [fill(f, c) for c in requests for f in REQUEST_FRAMES]
    held = {_norm(h) for h in heldout}
    seen: set[str] = set()
    kept = []
    for text in out + extra:
        key = _norm(text)
        if key not in held and key not in seen:
            seen.add(key)
            kept.append(text)
    return kept


WEATHER_HELD = ["Tell me the weather in {city}.", "What is it like outside in {city} right now?",
                "Could you look up the weather in {city}?", "How warm is it in {city}?"]
WEATHER_ASK = (compose(
    ["what's the weather in {city}", "what is the weather in {city}", "what's the weather like in {city}",
     "how is the weather in {city}", "how's the weather in {city} today", "is it raining in {city}",
     "is it cold in {city}", "is it hot in {city}", "is it warm in {city} today", "is it sunny in {city}",
     "is it snowing in {city}", "is it windy in {city}", "how hot is it in {city}", "how cold is it in {city} now",
     "what is the temperature in {city}", "what's the temperature in {city} right now",
     "what's the forecast for {city}", "what is the forecast in {city} today", "what are the conditions in {city}",
     "do I need an umbrella in {city} today", "do I need a coat in {city}", "what's it like in {city} today",
     "how is it outside in {city}", "is it nice out in {city}", "will it rain in {city}",
     "what's the weather doing in {city}"],
    ["check the weather in {city}", "get me the weather for {city}", "tell me the temperature in {city}",
     "look up the forecast for {city}", "find the weather in {city}", "show me the weather in {city}",
     "give me the forecast for {city}", "check if it is raining in {city}", "tell me the weather for {city}",
     "get the weather in {city} right now", "find out how warm it is in {city}", "see what it's like in {city}"],
    ["weather {city}", "Weather in {city}?", "{city} weather?", "Forecast for {city}?", "Temperature in {city}?"],
    WEATHER_HELD), WEATHER_HELD)
WEATHER_MORE = (["What about {city}?", "And in {city}?", "How about {city}?"], ["And {city}?"])
ALARM_HELD = ["I need an alarm at {time}.", "Could you wake me at {time}?", "Put an alarm on for {time}."]
ALARM_ASK = (compose(
    ["can you set an alarm for {time}", "will you wake me up at {time}"],
    ["set an alarm for {time}", "set an alarm at {time}", "set my alarm for {time}", "set my alarm to {time}",
     "wake me up at {time}", "create an alarm for {time}", "make an alarm for {time}", "add an alarm at {time}",
     "schedule an alarm for {time}", "turn on an alarm for {time}", "start an alarm for {time}",
     "get me up at {time}", "ring an alarm at {time}"],
    ["Alarm at {time}", "set alarm {time}", "I need to wake up at {time}.", "I have to get up at {time}.",
     "Wake-up call at {time}, please.", "Alarm for {time}.", "I must be up by {time}.",
     "I'd like to wake up at {time}."],
    ALARM_HELD), ALARM_HELD)
MESSAGE_HELD = ["Let {to} know that {text}.", "Please send {to} a text saying {text}.",
                "Drop {to} a message: {text}"]
MESSAGE_ASK = (compose(
    [],
    ["send a message to {to} saying {text}", "send {to} a message: {text}", "text {to}: {text}",
     "message {to} saying {text}", "tell {to} that {text}", "send a text to {to}: {text}",
     "text {to} and say {text}", "write to {to}: {text}", "send {to} the message {text}",
     "send {to} a text: {text}", "let {to} know: {text}", "message {to}: {text}",
     "send a note to {to} saying {text}", "drop {to} a line: {text}", "shoot {to} a text saying {text}",
     "write {to} a message saying {text}", "send {to} this: {text}", "tell {to} this: {text}",
     "pass a message to {to}: {text}", "inform {to} that {text}"],
    ["Text {to}: {text}", "Message for {to}: {text}", "To {to}: {text}", "{to}, message: {text}"],
    MESSAGE_HELD), MESSAGE_HELD)
CONVERT_HELD = ["I need {v} {fu} in {tu}.", "Change {v} {fu} into {tu}.", "What does {v} {fu} come to in {tu}?"]
CONVERT_ASK = (compose(
    ["how many {tu} is {v} {fu}", "what is {v} {fu} in {tu}", "how much is {v} {fu} in {tu}",
     "what's {v} {fu} in {tu}", "how many {tu} are {v} {fu}", "what is {v} {fu} converted to {tu}",
     "what is {v} {fu} when converted into {tu}", "how many {tu} make {v} {fu}"],
    ["convert {v} {fu} to {tu}", "convert {v} {fu} into {tu}", "turn {v} {fu} into {tu}",
     "express {v} {fu} in {tu}", "give me {v} {fu} in {tu}", "tell me {v} {fu} in {tu}",
     "translate {v} {fu} to {tu}", "work out {v} {fu} in {tu}"],
    ["{v} {fu} to {tu}", "convert {v} {fu} to {tu}", "{v} {fu} in {tu}?", "{v} {fu} is how many {tu}?"],
    CONVERT_HELD), CONVERT_HELD)
CONDITIONS = ["sunny", "cloudy", "rainy", "windy", "snowy", "foggy", "clear", "stormy"]


# ------------------------------------------------------------------------------------------------------
# Arithmetic answers

def answer_text(a: int, b: int, op: str) -> str:
    """The answer to a op b, always stated the same way ("2+2 equals 4."): restating the operands in a fixed
    form right before the result lets a small model read the digits at fixed offsets."""
    c = a + b if op == "+" else a - b if op == "-" else a * b
    return f"{a}{op}{b} equals {c}."


# Repeating: the answer is the quoted words exactly. Copying arbitrary words is what filling a tool call's
# arguments from the request takes, and a small model learns it far faster from turns that are nothing else.
REPEAT_ASK = (
    ["Repeat after me: {t}", "Say: {t}", "Please say {t}", "Echo this: {t}", "Can you repeat this: {t}",
     "Say the words {t}", "Repeat: {t}", "Type {t}", "Write {t}", "Copy this: {t}", "Please repeat {t}"],
    ["Could you say {t}", "Say back to me: {t}", "Repeat these words: {t}"],
)


# ------------------------------------------------------------------------------------------------------
# Noise: turns that match nothing the model knows, so that it learns to spread its probability there

NOISE_FRAMES = [
    "What is the {w} of {w}?", "Who {w} the {w}?", "How do I {w} a {w}?", "Why does the {w} {w}?",
    "Can you {w} my {w}?", "Where is {W}?", "When did {W} {w}?", "Is {w} {w}?", "Which {w} is the most {w}?",
    "Give me some {w}.", "{W} {w} {w}?", "{W} {w} {w} {w}.", "What does {w} mean?", "How many {w} are in a {w}?",
    "Do you {w} {w}?", "I want to {w} the {w}.", "Please {w} the {w} for me.", "What {w} should I {w}?",
]
REPLY_WORDS = (  # noqa: SIM905
    "the a of and to in is it that for on with as was at by this from or have an be are not but what all were "
    "when we there can your which their said if do will each about how up out them then she many some so these "
    "would other into has more her two like him see time could no make than first been its who now people my "
    "made over did down only way find use may water long little very after words called just where most know "
    "get through back much before go good new write our used me man too any day same right look think also "
    "around another came come work three word must because does part even place well such here take why things "
    "help put years different away again off went old number great tell men say small every found still between "
    "name should home big give air line set own under read last never us left end along while might next sound "
    "below saw something thought both few those always looked show large often together asked house world going "
    "want school important until form food keep children feet land side without boy once animals life enough "
    "took sometimes four head above kind began almost live page got earth need far hand high year mother light "
    "country father let night following picture being study second eyes soon times story boys since white days "
    "ever paper hard near sentence better best across during today others however sure means knew its try told "
    "young miles sun ways thing whole hear example heard several change answer room sea against top turned "
    "learn point city play toward five using himself usually"
).split()


def _nonword(r: random.Random) -> str:
    cons, vows = "bcdfghjklmnpqrstvwxz", "aeiouy"
    n = r.randint(1, 4)
    return "".join(r.choice(cons) * (r.random() < 0.8) + r.choice(vows) for _ in range(n)) + (
        r.choice(cons) if r.random() < 0.5 else "")


def _words_in(texts: list[str]) -> list[str]:
    return sorted({w.lower() for t in texts for w in re.findall(r"[A-Za-z]+", t) if len(w) > 1})


# Every word the training text contains, from the train side of each pool only. Copy turns write these too:
# a token the model only ever reads is pushed down at every output step (it is never the target), and then it
# cannot be copied into a tool call ("bring an umbrella" came out as "bring an lit"). Held-out pools are not
# read, so held-out names and messages stay unseen.
_TRAIN_POOLS = [ADD_ASK, SUB_ASK, MUL_ASK, FOLLOW_ASK, GREET_ASK, IDENTITY_ASK, ABILITY_ASK, HOW_ASK, THANKS_ASK,
                BYE_ASK, JOKE_ASK, JOKE_MORE, UNIT_ASK, WEATHER_ASK, WEATHER_MORE, ALARM_ASK, MESSAGE_ASK,
                CONVERT_ASK, REPEAT_ASK, CITIES, NAMES]
COPY_WORDS = _words_in(
    [t for pool in _TRAIN_POOLS for t in pool[0]] + [v for part in MESSAGE_PARTS[0].values() for v in part]
    + JOKES + SYSTEM_PROMPTS + CONDITIONS + NOISE_FRAMES + REPLY_WORDS
    + [IDENTITY, GREET_REPLY, ABILITY_REPLY, HOW_REPLY, THANKS_REPLY, BYE_REPLY, QWEN_DEFAULT_SYSTEM]
    + [f"{a} {b}" for a, b, _ in UNIT_FACTORS + TOOL_UNITS]
    + [t["function"]["description"] + " " + " ".join(p["description"] for p in t["function"]["parameters"]
                                                      ["properties"].values()) for t in TOOLS.values()])
# words that also name things: not a held-out name or city ("nice" is a word, and Nice a held-out city)
NAME_WORDS = [w for w in COPY_WORDS if len(w) > 2 and w.capitalize() not in CITIES[1] + NAMES[1]]
SUFFIXES = ["s", "ed", "ing", "er", "ly"]


# ------------------------------------------------------------------------------------------------------
# Generators


class Gen:
    """Draws conversations from the train or held-out pools with one seeded RNG."""

    def __init__(self, seed: int, split: str = "train") -> None:
        if split not in ("train", "heldout"):
            raise ValueError(f"split must be train or heldout, not {split!r}")
        self.r = random.Random(seed)
        self.split = split
        self.k = 0 if split == "train" else 1

    # -- pools
    def pick(self, pools: tuple[list[Any], list[Any]]) -> Any:
        return self.r.choice(pools[self.k])

    def invented(self) -> str:
        """A made-up word. Training draws letters at random or glues pieces of real words, so no pool can be
        memorised and the model has to learn to copy what the user wrote; the held-out split uses its own
        syllables."""
        if self.split == "train":
            r = self.r
            x = r.random()
            if x < 0.5:
                return _nonword(r).capitalize()
            if x < 0.7:  # a real word as a name: every word piece also starts a name somewhere
                return r.choice(NAME_WORDS).capitalize()
            # pieces of real words: the letter groups real names are made of ("sh", "lle", "burg"), in new orders
            words = [r.choice(COPY_WORDS) for _ in range(r.randint(2, 3))]
            pieces = [w[i:i + r.randint(2, 4)] for w in words for i in [r.randrange(max(1, len(w) - 1))]]
            return "".join(pieces).capitalize()
        return "".join(self.r.choice(SYLLABLES[1]) for _ in range(self.r.randint(2, 3))).capitalize()

    def word(self) -> str:
        """A lower-case word for a text to copy: common English words, words from anywhere in the training
        text (some with an inflection), some invented (a fixed phrase seen often enough is remembered, and
        then wins over the words the user actually wrote)."""
        x = self.r.random()
        if x < 0.25:
            return self.invented().lower()
        if x < 0.55:
            return self.r.choice(REPLY_WORDS)
        w = self.r.choice(COPY_WORDS)
        return w + self.r.choice(SUFFIXES) if x > 0.9 else w

    def name(self) -> str:
        return self.invented() if self.r.random() < (0.6 if self.split == "train" else 0.35) else self.pick(NAMES)

    def city(self) -> str:
        if self.r.random() < (0.6 if self.split == "train" else 0.25):
            word, x = self.invented(), self.r.random()
            if x < 0.15:
                return word + " " + self.r.choice(["City", "Bay", "Falls"])
            return word + " " + self.invented() if x < 0.25 else word
        return self.pick(CITIES)

    def message_text(self) -> str:
        parts = MESSAGE_PARTS[self.k]
        x = self.r.random()
        if self.split == "train" and x < 0.8:  # random words: only copying gets them right
            return " ".join(self.word() for _ in range(self.r.randint(2, 6)))
        if x < (0.9 if self.split == "train" else 0.75):
            return self.r.choice(parts["free"])
        return self.r.choice(parts["subject"]) + " " + self.r.choice(parts["pred"])

    def alarm_time(self) -> str:
        h, m = self.r.randint(0, 23), self.r.choice([0, 5, 10, 15, 20, 30, 40, 45, 50, self.r.randint(0, 59)])
        style = self.r.random()
        if style < 0.4:
            return f"{h:02d}:{m:02d}"
        if style < 0.7:
            return f"{h}:{m:02d}"
        h12 = h % 12 or 12
        return f"{h12}:{m:02d} {'am' if h < 12 else 'pm'}" if style < 0.9 else f"{h12} {'am' if h < 12 else 'pm'}"

    def pair(self, ordered: bool = False) -> tuple[int, int]:
        """Operands in 0..ARITH_MAX, one-digit ones more often (a model must get 2+2 right); ordered: a >= b."""
        hi = 9 if self.r.random() < 0.3 else ARITH_MAX
        a, b = self.r.randint(0, hi), self.r.randint(0, hi)
        return (b, a) if ordered and b > a else (a, b)

    # -- pieces of conversations
    def system_mode(self, conv: Conversation, allow_tools: bool) -> None:
        """Adds a system message (or not) and records the no-system rendering in meta.sys."""
        x = self.r.random()
        msgs: list[Message] = conv["messages"]
        if x < 0.35:
            msgs.insert(0, {"role": "system", "content": self.r.choice(SYSTEM_PROMPTS)})
            conv["meta"]["sys"] = "qwen"
        else:
            conv["meta"]["sys"] = self.r.choice(["none", "qwen", "qwen", "cactus"]) if not conv.get("tools") else "qwen"

    def arith(self, op: str | None = None) -> tuple[str, str, int, tuple[int, int, str]]:
        """A question and its answer; returns (question, answer, result, (a, b, op))."""
        op = op or self.r.choice(["+", "+", "-", "-", "*"])
        if op == "+":
            a, b = self.pair()
            c, asks = a + b, ADD_ASK
        elif op == "-":
            a, b = self.pair(ordered=True)
            c, asks = a - b, SUB_ASK
        else:
            a, b = self.r.randint(0, 9), self.r.randint(0, 9)
            c, asks = a * b, MUL_ASK
        q = self.pick(asks).format(a=a, b=b)
        return q, answer_text(a, b, op), c, (a, b, op)

    def follow(self, op: str) -> tuple[str, str, int]:
        op2 = op if self.r.random() < 0.7 else self.r.choice(["+", "-", "*"])
        if op2 == "*":
            a, b = self.r.randint(0, 9), self.r.randint(0, 9)
        else:
            a, b = self.pair(ordered=op2 == "-")
        c = a + b if op2 == "+" else a - b if op2 == "-" else a * b
        q = self.pick(FOLLOW_ASK).format(a=a, b=b, op=op2, word=OP_WORDS[op2])
        return q, answer_text(a, b, op2), c

    def tools_for(self, needed: str | None) -> list[dict[str, Any]]:
        names = [n for n in TOOLS if n != needed]
        self.r.shuffle(names)
        chosen = names[: self.r.randint(0 if needed else 1, 3)]
        if needed:
            chosen.insert(self.r.randint(0, len(chosen)), needed)
        tools = [TOOLS[n] for n in chosen]
        if self.r.random() < 0.4:
            tools = [_terse(t) for t in tools]
        if self.r.random() < 0.2:
            tools = [_sorted_keys(t) for t in tools]
        return tools

    # -- conversation kinds
    def conv_arith(self) -> Conversation:
        q, a, c, (_, _, op) = self.arith()
        msgs: list[Message] = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        meta: dict[str, Any] = {"kind": "arith", "answer": c, "op": op}
        for _ in range(self.r.randint(0, 6)):
            if self.r.random() < 0.6:
                q2, a2, _ = self.follow(op)
            else:
                q2, a2, _, _ = self.arith()
            msgs += [{"role": "user", "content": q2}, {"role": "assistant", "content": a2}]
        return {"messages": msgs, "meta": meta}

    def conv_chat(self) -> Conversation:
        x = self.r.random()
        if x < 0.3:
            msgs = [{"role": "user", "content": self.pick(GREET_ASK)}, {"role": "assistant", "content": GREET_REPLY}]
        elif x < 0.6:
            msgs = [{"role": "user", "content": self.pick(IDENTITY_ASK)}, {"role": "assistant", "content": IDENTITY}]
        elif x < 0.75:
            msgs = [{"role": "user", "content": self.pick(ABILITY_ASK)},
                    {"role": "assistant", "content": ABILITY_REPLY}]
        elif x < 0.85:
            msgs = [{"role": "user", "content": self.pick(HOW_ASK)}, {"role": "assistant", "content": HOW_REPLY}]
        else:
            msgs = [{"role": "user", "content": self.pick(GREET_ASK)}, {"role": "assistant", "content": GREET_REPLY}]
            q, a, _, _ = self.arith()
            msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        if self.r.random() < 0.3:
            msgs += [{"role": "user", "content": self.pick(THANKS_ASK)},
                     {"role": "assistant", "content": THANKS_REPLY}]
            if self.r.random() < 0.5:
                msgs += [{"role": "user", "content": self.pick(BYE_ASK)}, {"role": "assistant", "content": BYE_REPLY}]
        return {"messages": msgs, "meta": {"kind": "chat"}}

    def conv_joke(self) -> Conversation:
        first = self.r.randrange(len(JOKES))
        msgs: list[Message] = [{"role": "user", "content": self.pick(JOKE_ASK)},
                               {"role": "assistant", "content": JOKES[first]}]
        if self.r.random() < 0.35:
            second = (first + 1 + self.r.randrange(len(JOKES) - 1)) % len(JOKES)
            msgs += [{"role": "user", "content": self.pick(JOKE_MORE)},
                     {"role": "assistant", "content": JOKES[second]}]
        return {"messages": msgs, "meta": {"kind": "joke"}}

    def conv_units(self) -> Conversation:
        a, b, f = self.r.choice(UNIT_FACTORS)
        v = self.r.randint(1, 12)
        q = self.pick(UNIT_ASK).format(v=v, a=a, b=b)
        ans = f"{v} {a} is {v * f} {b}."
        return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": ans}],
                "meta": {"kind": "units", "answer": v * f}}

    def tool_turns(self, name: str, ask: str | None = None) -> tuple[list[Message], dict[str, Any]]:
        """user request, assistant call, tool result, assistant answer."""
        r = self.r
        if name == "get_weather":
            city = self.city()
            q = (ask or self.pick(WEATHER_ASK)).format(city=city)
            args: dict[str, Any] = {"city": city}
            t, cond = r.randint(-10, 35), r.choice(CONDITIONS)
            result = to_json({"city": city, "temperature": t, "unit": "celsius", "condition": cond})
            final = f"It is {t} degrees celsius and {cond} in {city}."
        elif name == "set_alarm":
            tm = self.alarm_time()
            q = self.pick(ALARM_ASK).format(time=tm)
            args = {"time": tm}
            result = to_json({"status": "ok", "time": tm})
            final = f"Your alarm is set for {tm}."
        elif name == "send_message":
            to, text = self.name(), self.message_text()
            q = self.pick(MESSAGE_ASK).format(to=to, text=text)
            args = {"to": to, "text": text}
            result = to_json({"status": "sent", "to": to})
            final = f"Done! I sent your message to {to}."
        else:
            fu, tu, f = r.choice(TOOL_UNITS)
            v: Any = r.randint(1, 200) if r.random() < 0.75 else round(r.uniform(0.5, 99.5), 1)
            q = self.pick(CONVERT_ASK).format(v=v, fu=fu, tu=tu)
            args = {"value": v, "from_unit": fu, "to_unit": tu}
            if f is None:
                res = v * 9 / 5 + 32 if fu == "celsius" else (v - 32) * 5 / 9
            else:
                res = v * f
            res = round(res, 2)
            result = to_json({"value": res, "unit": tu})
            final = f"{v} {fu} is {res} {tu}."
        call = {"type": "function", "function": {"name": name, "arguments": args}}
        msgs: list[Message] = [
            {"role": "user", "content": q},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "content": result},
            {"role": "assistant", "content": final},
        ]
        return msgs, {"call": {"name": name, "arguments": args}}

    def conv_tool(self) -> Conversation:
        name = self.r.choice(list(TOOLS))
        msgs, meta = self.tool_turns(name)
        meta["kind"] = "tool"
        tools = self.tools_for(name)
        listed = [t["function"]["name"] for t in tools]
        last = name
        for _ in range(self.r.choice([0, 0, 1, 1, 2, 2, 3])):  # more requests in the same conversation
            x = self.r.random()
            if x < 0.7:
                nxt = self.r.choice(listed)
                ask = self.pick(WEATHER_MORE) if nxt == last == "get_weather" and self.r.random() < 0.4 else None
                more, _ = self.tool_turns(nxt, ask)
                last = nxt
            elif x < 0.9:
                q, a, _, _ = self.arith()
                more = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            else:
                more = [{"role": "user", "content": self.pick(THANKS_ASK)},
                        {"role": "assistant", "content": THANKS_REPLY}]
            msgs += more
        return {"messages": msgs, "tools": tools, "meta": meta}

    def conv_repeat(self) -> Conversation:
        r = self.r
        words = [self.invented() if r.random() < 0.3 else self.word() for _ in range(r.randint(1, 6))]
        text = " ".join(words)
        msgs: list[Message] = [{"role": "user", "content": self.pick(REPEAT_ASK).format(t=text)},
                               {"role": "assistant", "content": text}]
        return {"messages": msgs, "meta": {"kind": "repeat", "answer": text}}

    def conv_noise(self) -> Conversation:
        """A message made of non-words in a generic question frame, answered by random words."""
        r = self.r
        frame = r.choice(NOISE_FRAMES)
        text = re.sub(r"\{[wW]\}", lambda m: _nonword(r).capitalize() if m.group(0) == "{W}" else _nonword(r), frame)
        words = [r.choice(REPLY_WORDS) for _ in range(r.randint(6, 14))]
        reply = "Hmm, " + " ".join(words) + "."
        return {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": reply}],
                "meta": {"kind": "noise"}}

    def conversation(self) -> Conversation:
        x = self.r.random()
        kinds: list[tuple[float, Callable[[], Conversation]]] = [
            (0.38, self.conv_arith), (0.66, self.conv_tool), (0.77, self.conv_repeat), (0.85, self.conv_chat),
            (0.88, self.conv_joke), (0.95, self.conv_units), (1.01, self.conv_noise),
        ]
        conv = next(fn for p, fn in kinds if x < p)()
        if "tools" not in conv and self.r.random() < 0.12:
            conv["tools"] = self.tools_for(None)  # tools offered but not needed
        self.system_mode(conv, True)
        return conv


def generate(seed: int, n: int, split: str = "train") -> list[Conversation]:
    """`n` conversations drawn with `seed` from the `split` pools."""
    g = Gen(seed, split)
    return [g.conversation() for _ in range(n)]


def dumps(conv: Conversation) -> str:
    """One corpus line (no newline): deterministic JSON."""
    return json.dumps(conv, ensure_ascii=False, separators=(", ", ": "))


def corpus_bytes(seed: int, n: int, split: str = "train") -> bytes:
    return "".join(dumps(c) + "\n" for c in generate(seed, n, split)).encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--n", type=int, default=45000, help="number of conversations")
    p.add_argument("--split", choices=["train", "heldout"], default="train")
    p.add_argument("--out", help="output .jsonl (default: stdout)")
    p.add_argument("--text", action="store_true", help="print the rendered conversations instead of JSON")
    args = p.parse_args(argv)
    if args.text:
        for conv in generate(args.seed, args.n, args.split):
            print("".join(t for t, _ in render_conversation(conv)))
            print("-" * 60)
        return 0
    data = corpus_bytes(args.seed, args.n, args.split)
    if args.out:
        with open(args.out, "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
