"""Reply -> Block Kit: every reply shape renders inside Slack's limits, escaped, log tail kept.

Validity is judged by the fake Slack API's own Block Kit checker (the same one that answers
``invalid_blocks`` to the adapter in tests/test_slack.py).
"""

from __future__ import annotations

import json

import pytest

from adapters.slack_blocks import base_action_id, escape, render, size
from bot.events import ACTION_CANCEL, ACTION_CHOOSE, ACTION_CONFIRM, Button, Field, Reply
from tests.fakes.slack_api import block_kit_problem

LOG = "\n".join(f"2026-11-21 22:00:{i % 60:02d} step {i} processing batch {i * 7}" for i in range(5000))
LOG += "\nERROR: connection refused <!channel> `rm -rf` ```\nJob EXTRACT01 ended with RC=8"

SHAPES = {
    "text": Reply(text="EXTRACT01 is *SUCC*"),
    "title_level": Reply(text="It failed", title="EXTRACT01 ABEND", level="error"),
    "fields": Reply(text="Status", fields=tuple(Field(label=f"F{i}", value=f"v{i}") for i in range(4))),
    "code": Reply(text="Log tail", code="line 1\nline 2", code_title="EXTRACT01 stdlist"),
    "long_log": Reply(text="Why it failed", code=LOG, code_title="stdlist", title="EXTRACT01", level="error"),
    "buttons": Reply(text="Rerun?", buttons=(Button(label="Confirm", action_id=ACTION_CONFIRM, value="c1"),
                                              Button(label="Cancel", action_id=ACTION_CANCEL, value="c1"))),
    "choices": Reply(text="Which one?", buttons=tuple(Button(label=f"AGT{i}#PAY.EXTRACT", action_id=ACTION_CHOOSE,
                                                             value=f"status AGT{i}#PAY.EXTRACT") for i in range(40))),
    "context": Reply(text="Done", context="requested by @ana", level="success"),
    "everything": Reply(text="x" * 9000, title="T" * 400, fields=tuple(Field(label="L" * 50, value="v" * 3000)
                                                                        for i in range(25)),
                        code=LOG, code_title="c" * 900, buttons=tuple(Button(label="b" * 100, action_id=ACTION_CHOOSE,
                                                                              value="v" * 2500) for _ in range(3)),
                        context="k" * 4000, level="warning"),
    "only_code": Reply(text="", code="just a log"),
    "empty": Reply(text=""),
}


@pytest.mark.parametrize("name", SHAPES)
def test_every_shape_is_valid_block_kit(name: str) -> None:
    rendered = render(SHAPES[name])
    assert block_kit_problem(rendered["blocks"]) is None
    assert rendered["text"].strip(), "a plain-text fallback is always set"
    assert len(rendered["blocks"]) <= 50 and size(rendered["blocks"]) <= 13_000


def test_plain_text_is_one_section_with_fallback() -> None:
    rendered = render(Reply(text="EXTRACT01 is *SUCC*"))
    assert rendered == {"text": "EXTRACT01 is *SUCC*",
                        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "EXTRACT01 is *SUCC*"}}]}


def test_level_picks_an_emoji_in_the_header() -> None:
    blocks = render(SHAPES["title_level"])["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": ":x: EXTRACT01 ABEND", "emoji": True}}
    assert render(Reply(text="ok", level="success"))["blocks"][0]["text"]["text"].startswith(":white_check_mark: ")
    assert render(Reply(text="plain"))["blocks"][0]["text"]["text"] == "plain"


def test_header_is_clipped_to_150() -> None:
    header = render(Reply(text="x", title="T" * 400))["blocks"][0]["text"]["text"]
    assert len(header) == 150 and header.endswith("…")


def test_channel_ping_in_a_job_log_is_escaped_everywhere() -> None:
    reply = Reply(text="job <!channel> said <@U123> & <https://evil|click>", title="<!here>",
                  fields=(Field(label="<!everyone>", value="a>b"),), code="ERROR <!channel>", context="<!subteam^S1>")
    rendered = render(reply)
    dumped = json.dumps(rendered)
    for raw in ("<!channel>", "<@U123>", "<https://evil", "<!everyone>", "<!subteam"):
        assert raw not in dumped.replace(json.dumps("<!here>")[1:-1], "")  # header is plain_text, never parsed
    section = rendered["blocks"][1]["text"]["text"]
    assert section == "job &lt;!channel&gt; said &lt;@U123&gt; &amp; &lt;https://evil|click&gt;"
    assert "ERROR &lt;!channel&gt;" in dumped
    assert rendered["text"].startswith("&lt;!here&gt;: job &lt;!channel&gt;")


def test_escape_handles_ampersand_first() -> None:
    assert escape("&lt; <") == "&amp;lt; &lt;"


def test_code_is_fenced_and_backticks_cannot_close_it() -> None:
    blocks = render(Reply(text="log", code="a ``` b `c`", code_title="stdlist"))["blocks"]
    assert blocks[1] == {"type": "context", "elements": [{"type": "mrkdwn", "text": "*stdlist*"}]}
    code = blocks[2]["text"]["text"]
    assert code.startswith("```\n") and code.endswith("\n```")
    assert "`" not in code[4:-4]


def test_long_log_keeps_the_tail_with_a_marker() -> None:
    blocks = render(SHAPES["long_log"])["blocks"]
    code_sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and b["text"]["text"].startswith("```")]
    assert len(code_sections) >= 2
    joined = "\n".join(s[4:-4] for s in code_sections)
    assert joined.endswith("Job EXTRACT01 ended with RC=8")
    assert "ERROR: connection refused &lt;!channel&gt;" in joined
    first_line = joined.split("\n", 1)[0]
    assert first_line.startswith("… (") and first_line.endswith(" earlier lines cut)")
    cut = int(first_line[3:].split(" ")[0])
    kept_first = joined.split("\n")[1]
    assert kept_first == LOG.split("\n")[cut], "the marker counts exactly the lines that were cut"
    assert all(len(s) <= 3000 for s in code_sections)


def test_log_sits_between_answer_and_buttons() -> None:
    reply = Reply(text="Failed", code="boom", buttons=(Button(label="Rerun", action_id=ACTION_CONFIRM, value="x"),),
                  context="small print")
    kinds = [b["type"] for b in render(reply)["blocks"]]
    assert kinds == ["section", "section", "actions", "context"]


def test_long_text_keeps_its_head() -> None:
    text = "\n".join(f"JOB{i:04d} ABEND" for i in range(1000))
    blocks = render(Reply(text=text))["blocks"]
    assert blocks[0]["text"]["text"].startswith("JOB0000 ABEND")
    shown = "\n".join(b["text"]["text"] for b in blocks).split("\n")
    assert shown[-1].startswith("… (") and shown[-1].endswith(" more lines cut)")
    assert len(shown) - 1 + int(shown[-1][3:].split(" ")[0]) == 1000, "the marker counts exactly the lines cut"
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks)


def test_fields_split_by_ten_and_cut_past_twenty() -> None:
    blocks = render(Reply(text="x", fields=tuple(Field(label=f"L{i}", value=f"v{i}") for i in range(25))))["blocks"]
    fields = [b["fields"] for b in blocks if "fields" in b]
    assert [len(f) for f in fields] == [10, 10]
    assert fields[0][0]["text"] == "*L0*\nv0"
    assert fields[1][-1]["text"] == "… 6 more fields cut"


def test_buttons_styles_and_unique_action_ids() -> None:
    reply = Reply(text="?", buttons=(Button(label="Confirm", action_id=ACTION_CONFIRM, value="id1"),
                                     Button(label="Cancel", action_id=ACTION_CANCEL, value="id1"),
                                     Button(label="Kill", action_id="resync_kill", value="k", style="danger")))
    elements = render(reply)["blocks"][-1]["elements"]
    assert [e.get("style") for e in elements] == ["primary", None, "danger"]
    assert [e["value"] for e in elements] == ["id1", "id1", "k"]

    choices = render(SHAPES["choices"])["blocks"]
    actions = [b for b in choices if b["type"] == "actions"]
    assert [len(a["elements"]) for a in actions] == [25, 15]
    ids = [e["action_id"] for a in actions for e in a["elements"]]
    assert len(set(ids)) == 40 and {base_action_id(i) for i in ids} == {ACTION_CHOOSE}


def test_button_text_and_value_are_clipped() -> None:
    element = render(Reply(text="?", buttons=(Button(label="b" * 100, action_id=ACTION_CHOOSE, value="v" * 2500),)))[
        "blocks"][-1]["elements"][0]
    assert len(element["text"]["text"]) == 75 and len(element["value"]) == 2000


def test_a_title_with_its_own_symbol_gets_no_second_icon() -> None:
    blocks = render(Reply(title="🔴 ABEND: CPU1#S.J", text="x", level="error"))["blocks"]
    assert blocks[0]["text"]["text"] == "🔴 ABEND: CPU1#S.J"
    plain = render(Reply(title="CPU1#S.J", text="x", level="error"))["blocks"]
    assert plain[0]["text"]["text"] == ":x: CPU1#S.J"
