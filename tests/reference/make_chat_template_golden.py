#!/usr/bin/env python3
"""Chat-template goldens for tests/core/test_chat_template.cpp.

Renders every template listed in tests/data/chat_templates/templates.json
through transformers' own renderer (render_jinja_template, what
apply_chat_template calls) for a fixed set of conversations, with and without
the generation prompt, and writes tests/data/chat_templates/golden.json:

  {"versions": {python, transformers, jinja2},
   "conversations": {name: [{"role", "content"}, ...]},
   "cases": [{"template": name from templates.json, "conversation": name,
              "add_generation_prompt": bool,
              "text": the rendered string}          # or, when the template refuses:
              "error": raise_exception's message}],
   "snippet_variables": {...},
   "snippets": [{"name", "template", "text" or "error"}]}

The snippets are small templates, one language feature each (whitespace
control, operators, Python's str() of values, filters, tests, undefined
values, loops, macros), rendered in the same environment with messages=[] and
snippet_variables; "error" holds the exception jinja2 raised.

Each render gets what apply_chat_template gives a tokenizer whose special
tokens are the template's bos_token/eos_token (an empty one is left out, as
transformers leaves out unset tokens), plus the entry's "variables". An entry
with "now" renders with datetime.now() fixed at that local time, so that
strftime_now() is deterministic; the C++ test sets the same clock.

Rerun (outside the build; the C++ test never needs Python):
    python3 -m venv /tmp/tplenv && /tmp/tplenv/bin/pip install transformers jinja2
    /tmp/tplenv/bin/python tests/reference/make_chat_template_golden.py
"""
import argparse
import datetime as dt
import json
import os
import platform

import jinja2
import transformers
from transformers.utils import chat_template_utils
from transformers.utils.chat_template_utils import render_jinja_template

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
U1 = {"role": "user", "content": "Hello, how are you?"}
A1 = {"role": "assistant", "content": "I'm doing great. How can I help you today?"}
U2 = {"role": "user", "content": "What is 2 + 2?"}
A2 = {"role": "assistant", "content": "2 + 2 = 4."}

CONVERSATIONS = {
    "user": [U1],
    "system_user": [SYSTEM, U1],
    "multi_turn": [U1, A1, U2, A2],
    "system_multi_turn": [SYSTEM, U1, A1, U2],
    "system_multi_turn_answered": [SYSTEM, U1, A1, U2, A2],
    # Surrounding whitespace (templates that trim or strip), non-ASCII text,
    # quotes and backslashes.
    "whitespace_unicode": [
        {"role": "user", "content": "  Héllo, wörld! 👋 Ça va?\n\n"},
        {"role": "assistant", "content": "\n 你好 — tabs\tand \"quotes\" 'apostrophes' \\ backslash  "},
        {"role": "user", "content": "{{ not a template }} {% raw %}"},
    ],
    # Roles that do not alternate: Llama-2, Mistral and Gemma refuse them.
    "two_users": [U1, U2],
}


SNIPPET_VARIABLES = {
    "msgs": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b", "tool_calls": []},
        {"role": "user", "content": "c"},
    ],
}

SNIPPETS = [
    # whitespace: trim_blocks, lstrip_blocks, -, +, comments, newlines, raw
    ("trim_lstrip", "a\n{% if true %}\nb\n    {% endif %}\nc\n  {% for i in [1, 2] %}\n  {{ i }}\n  {% endfor %}\nd"),
    ("lstrip_after_text", "x  {% if true %}y{% endif %}  \n  z"),
    ("minus", "a  {%- if true -%}  b  {%- endif -%}  c\n  {{- 'x' -}}  \nd"),
    ("plus", "a\n  {%+ if true %}b{% endif +%}\nc"),
    ("comments", "{# one #}\nx\n  {#- two -#}  y\n    {# three #}\nz"),
    ("newlines", "l1\r\nl2\rl3\n"),
    ("trailing_newlines", "x\n\n"),
    ("raw", "  {% raw %}  {{ not }} {% if %}  {% endraw %}\nb"),
    ("variable_no_trim", "{{ 'a' }}\n{{ 'b' }}\n"),
    # operators and Python's str()
    ("arithmetic", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 7 // 2 }} {{ -7 // 2 }} "
                   "{{ -7 % 3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 10 / 4 }} {{ 2 ** -1 }} {{ 5 % 2.5 }} {{ -5.5 // 2 }}"),
    ("floats", "{{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e-5 }} {{ 3.0 }} {{ 2.5e15 }} {{ 1e16 }} "
               "{{ 123456789.125 }} {{ 1 / 3 }} {{ 0.0001 }} {{ -0.0 }}"),
    ("numbers", "{{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }} {{ 1_0.5 }}"),
    ("concat", "{{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' * 3 }} {{ 2 * 'ab' }} {{ [1] * 2 }} {{ [1, 2] + [3] }} "
               "{{ 'a' ~ [1] }} {{ 'a' 'b' }}"),
    ("str_of_values", "{{ true }} {{ none }} {{ [1, 'a', none, true, 1.5] }} {{ {'a': 1, 'b': [2]} }} "
                      "{{ ('x',) }} {{ () }} {{ (1, 2) }} {{ 'it\\'s' }} {{ [\"it's\"] }} {{ ['a\"b'] }} "
                      "{{ ['\\n\\t\\\\'] }} {{ ['é', '\\x00'] }} {{ {'a': 1, 'a': 2} }}"),
    ("escapes", "{{ '\\x41\\u00e9\\U0001F600\\101\\q\\'\\\"' }}"),
    ("comparisons", "{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} "
                    "{{ true == 1 }} {{ 'a' in 'cat' }} {{ 'x' not in ['y'] }} {{ 'k' in {'k': 1} }} "
                    "{{ [1, 2] == [1, 2] }} {{ (1, 2) == [1, 2] }} {{ {'a': 1} == {'a': 1} }} {{ 2 >= 2.0 }}"),
    ("logic", "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ none or [] }} {{ not 0 }} {{ not [] and 1 }} "
              "{{ 1 if [] else 2 }} {{ 'y' if 1 else 'n' }}|{{ 'y' if 0 }}|{{ 'a' if false else 'b' if true else 'c' }}"),
    ("subscripts", "{{ 'abc'[1] }} {{ 'abc'[-1] }} {{ 'abcdef'[1:4] }} {{ 'abcdef'[::-1] }} {{ 'abcdef'[::2] }} "
                   "{{ 'héllo'[1:3] }} {{ [1, 2, 3, 4][1:] }} {{ [1, 2, 3][-2:] }} {{ [1, 2, 3][5:] }} "
                   "{{ [1, 2, 3][:-1] }} {{ [5, 6].1 }} {{ msgs[0].role }} {{ msgs[-1]['content'] }} "
                   "{{ {'items': 5}['items'] }} {{ msgs[1:][0].content }}"),
    # filters
    ("trim_length", "{{ '  x  ' | trim }}|{{ 'xxaxx' | trim('x') }}|{{ [1, 2, 3] | length }}|{{ 'héllo' | length }}|"
                    "{{ {'a': 1} | length }}|{{ [1, 2] | count }}|{{ ' \\t\\n x \\u00a0' | trim }}"),
    ("case", "{{ 'hello world' | title }} {{ 'hELLO' | capitalize }} {{ 'Ab' | upper }}{{ 'Ab' | lower }} "
             "{{ \"they're bill's-friends (x)\" | title }}"),
    ("default", "{{ undefined_name | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} "
                "{{ none | default('d') }} {{ undefined_name | d }}|"),
    ("first_last", "{{ [3, 4] | first }} {{ [3, 4] | last }} {{ 'abc' | first }} {{ {'k': 1, 'j': 2} | first }} "
                   "{{ [] | first }}|"),
    ("join", "{{ [1, 'a', none] | join(', ') }} {{ ['a', 'b'] | join }} "
             "{{ [{'n': 'x'}, {'n': 'y'}] | join('-', attribute='n') }}"),
    ("replace", "{{ 'aaa' | replace('a', 'bb') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 'ab' | replace('', '-') }}"),
    ("int_float", "{{ '42' | int }} {{ ' 7 ' | int }} {{ '3.9' | int }} {{ 'x' | int }} {{ 'x' | int(5) }} "
                  "{{ 4.7 | int }} {{ '1_0' | int }} {{ '2.5' | float }} {{ 'x' | float }} {{ true | int }} "
                  "{{ '0x1A' | int(0, 16) }} {{ 3 | float }}"),
    ("list_items", "{{ 'ab' | list }} {{ {'a': 1, 'b': 2} | items | list }} {{ {'a': 1} | list }} "
                   "{{ (1, 2) | list }} {{ [1, 2, 3] | reverse | list }} {{ 'abc' | reverse }} {{ -3 | abs }} "
                   "{{ 1 | string }}{{ [1] | string }}"),
    ("tojson", "{{ {'a': [1, 2.5, none, true, 'é\"\\n'], 'b': {}} | tojson }}|"
               "{{ {'b': 1, 'a': [1, [], {}]} | tojson(indent=2) }}|{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}|"
               "{{ 'é😀' | tojson(true) }}|{{ [1, 2] | tojson(separators=[',', ':']) }}|{{ '<&>' | tojson }}|"
               "{{ msgs | tojson }}"),
    ("select_map", "{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }} "
                   "{{ msgs | rejectattr('role', 'eq', 'user') | list | length }} "
                   "{{ msgs | selectattr('tool_calls', 'undefined') | list | length }} "
                   "{{ msgs | selectattr('tool_calls', 'defined') | list | length }} "
                   "{{ [0, 1, 2, none] | select | list }} {{ [1, 2, 3, 4] | reject('odd') | list }} "
                   "{{ ['a', 'B'] | map('upper') | join }} {{ msgs | map(attribute='x', default='-') | join }} "
                   "{{ msgs | selectattr('content') | list | length }}"),
    # tests
    ("tests", "{{ x is defined }} {{ none is none }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is iterable }} "
              "{{ 'a' is iterable }} {{ 1 is number }} {{ true is number }} {{ 1 is integer }} {{ true is integer }} "
              "{{ 1.0 is float }} {{ true is boolean }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} "
              "{{ 'a' is equalto 'a' }} {{ 2 is gt 1 }} {{ 'x' is in 'xyz' }} {{ none is sameas none }} "
              "{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ x is undefined }} {{ x is not defined }} "
              "{{ range is callable }} {{ msgs is sequence }} {{ 1 is ne 2 }} {{ 1 is le 1 }} {{ x is mapping }}"),
    # undefined values: printable, false, empty; everything else is an error
    ("undefined_ok", "[{{ x }}][{{ x | length }}][{% for i in x %}{{ i }}{% endfor %}][{{ x == none }}]"
                     "[{{ not x }}][{{ x | trim }}][{{ msgs[0].missing }}][{{ msgs[0]['missing'] }}][{{ none.attr }}]"
                     "[{{ [1][5] }}][{{ x ~ 'a' }}][{{ 'a' in x }}][{{ x | default('d') }}]"),
    ("undefined_attr", "{{ x.attr }}"),
    ("undefined_add", "{{ x + 1 }}"),
    ("undefined_item", "{{ x[0] }}"),
    ("undefined_call", "{{ x() }}"),
    ("undefined_compare", "{{ x < 1 }}"),
    ("undefined_chain", "{{ msgs[0].missing.deeper }}"),
    ("type_error", "{{ 'a' + 1 }}"),
    ("zero_division", "{{ 1 // 0 }}"),
    ("raise", "a{{ raise_exception('boom') }}"),
    ("syntax_error", "{% if true %}x"),
    ("unknown_filter", "{{ 1 | no_such_filter }}"),
    # statements
    ("loop_vars", "{% for i in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
                  "{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.previtem }}{{ loop.nextitem }}"
                  "{{ loop.cycle('x', 'y') }};{% endfor %}"),
    ("loop_else_filter", "{% for i in [] %}x{% else %}empty{% endfor %} "
                         "{% for i in range(10) if i is odd %}{{ i }}/{{ loop.length }},{% endfor %}"),
    ("loop_controls", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}"
                      "{% endif %}{{ i }}{% endfor %}"),
    ("nested_loops", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}"
                     "{{ loop.index }}|{% endfor %}"),
    ("unpacking", "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"
                  "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}{% for k, v in {'z': 0} | items %}{{ k }}{% endfor %}"),
    ("dict_methods", "{{ {'a': 1}.get('a') }} {{ {'a': 1}.get('b') }} {{ {'a': 1}.get('b', 2) }} "
                     "{{ {'a': 1, 'b': 2}.keys() | list }} {{ {'a': 1}.values() | list }} {{ {'a': 1}.items() | list }}"),
    ("string_methods", "{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}|"
                       "{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ ' a b  c '.split() }}|"
                       "{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ \"they're bill's\".title() }}|"
                       "{{ 'ABC'.lower() }}|{{ 'abc'.upper() }}|{{ 'aXc'.replace('X', 'b') }}|{{ 'abc'.find('c') }}|"
                       "{{ '-'.join(['a', 'b']) }}|{{ 'hello'.capitalize() }}|{{ 'a b c'.split(none, 1) }}"),
    ("scoping", "{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}"
                "{% if true %}{% set y = 3 %}{% endif %}{{ y }}"),
    ("namespace", "{% set ns = namespace(n=0, found=false) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
                  "{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.n }}{{ ns.found }}"),
    ("set_block", "{% set s %}a{{ 1 + 1 }}b{% endset %}[{{ s }}]{% set a, b = 1, 2 %}{{ a }}{{ b }}"),
    ("macro", "{% macro greet(name, greeting='Hi') %}{{ greeting }}, {{ name }}!{% endmacro %}"
              "{{ greet('Bob') }} {{ greet('Al', greeting='Yo') }} {{ greet('X', 'Hey') }}"),
    ("globals", "{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(5, 0, -2) | list }} "
                "{{ dict(a=1, b='x') }} {{ dict({'a': 1}, b=2) | tojson }} "
                "{{ strftime_now('%Y') | length }}"),
    ("generation", "x{% generation %}abc{% endgeneration %}y"),
]


class FixedClock(dt.datetime):
    now_value = None

    @classmethod
    def now(cls, tz=None):
        return cls.now_value


def render(template, conversation, add_generation_prompt, entry):
    kwargs = dict(entry.get("variables", {}))
    for key in ("bos_token", "eos_token"):
        if entry[key]:
            kwargs[key] = entry[key]
    chat_template_utils.datetime = dt.datetime
    if "now" in entry:
        FixedClock.now_value = dt.datetime.strptime(entry["now"], "%Y-%m-%d %H:%M:%S")
        chat_template_utils.datetime = FixedClock
    try:
        rendered, _ = render_jinja_template(
            conversations=[conversation],
            chat_template=template,
            add_generation_prompt=add_generation_prompt,
            **kwargs,
        )
        return {"text": rendered[0]}
    except jinja2.exceptions.TemplateError as e:
        return {"error": str(e)}
    finally:
        chat_template_utils.datetime = dt.datetime


def render_snippet(template):
    try:
        rendered, _ = render_jinja_template(conversations=[[]], chat_template=template, **SNIPPET_VARIABLES)
        return {"text": rendered[0]}
    except Exception as e:  # jinja2 raises TemplateError, TypeError, ZeroDivisionError...
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    folder = os.path.join(here, "..", "data", "chat_templates")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", default=folder)
    args = parser.parse_args()

    with open(os.path.join(args.folder, "templates.json"), encoding="utf-8") as f:
        entries = json.load(f)
    cases = []
    for entry in entries:
        with open(os.path.join(args.folder, entry["file"]), encoding="utf-8", newline="") as f:
            template = f.read()
        for name, conversation in CONVERSATIONS.items():
            for add_generation_prompt in (False, True):
                case = {"template": entry["name"], "conversation": name, "add_generation_prompt": add_generation_prompt}
                case.update(render(template, conversation, add_generation_prompt, entry))
                cases.append(case)
    golden = {
        "versions": {
            "python": platform.python_version(),
            "transformers": transformers.__version__,
            "jinja2": jinja2.__version__,
        },
        "conversations": CONVERSATIONS,
        "cases": cases,
        "snippet_variables": SNIPPET_VARIABLES,
        "snippets": [{"name": n, "template": t, **render_snippet(t)} for n, t in SNIPPETS],
    }
    out = os.path.join(args.folder, "golden.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    refused = sum("error" in c for c in cases)
    print(f"{out}: {len(cases)} cases ({refused} refused by the template)")


if __name__ == "__main__":
    main()
