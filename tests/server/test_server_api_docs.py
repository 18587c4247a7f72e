"""The docs say what the models say: docs/server.md's answers, docs/protocol.md's events.

The models are the one definition (api_schema for the read API's answers,
ingest for the events, which validate them); these tests fail when a field is
documented but not defined, defined but not documented, or documented with a
type the model does not take.
"""

from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from pytest_rt import protocol
from pytest_rt.server import api_schema, ingest

DOCS = Path(__file__).parents[2] / "docs"
PLACEHOLDER = "\x00placeholder"  # `Job`, `Test`: documented in their own example


def section(path: Path, title: str) -> str:
    text = path.read_text()
    start = text.index(f"\n{title}\n")
    end = text.find("\n## ", start + len(title) + 2)
    return text[start : end if end >= 0 else len(text)]


def examples(text: str) -> list[Any]:
    """The JSON examples of ``text``, placeholders (``Job``, ``[Test, ...]``) marked."""
    found = []
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        block = re.sub(r",\s*\.\.\.\]", "]", block)
        block = re.sub(r'(?<!")\b(Job|Test)\b(?!")', lambda _: json.dumps(PLACEHOLDER), block)
        found.append(json.loads(block))
    return found


def model_in(annotation: Any) -> Any:
    """``annotation`` without its ``| None``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def differences(example: Any, annotation: Any, where: str) -> list[str]:
    """How ``example`` and the type ``annotation`` disagree: field names, recursively, and
    each documented value's type."""
    if example == PLACEHOLDER:
        return []
    declared, annotation = annotation, model_in(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not isinstance(example, dict):
            return [f"{where}: documented as {example!r}, the model is {annotation.__name__}"]
        fields = annotation.model_fields
        problems = [f"{where}.{k}: documented, not in {annotation.__name__}"
                    for k in example if k not in fields]
        problems += [f"{where}.{k}: in {annotation.__name__}, not documented"
                     for k in fields if k not in example]
        for key in example.keys() & fields.keys():
            problems += differences(example[key], fields[key].annotation, f"{where}.{key}")
        return problems
    if typing.get_origin(annotation) is list and isinstance(example, list):
        (item,) = typing.get_args(annotation)
        return [p for i, value in enumerate(example)
                for p in differences(value, item, f"{where}[{i}]")]
    try:
        TypeAdapter(declared).validate_python(example, strict=True)
    except ValidationError:
        return [f"{where}: documented as {example!r}, the model says {declared}"]
    return []


READ_API = section(DOCS / "server.md", "## Read API")
# Each example of docs/server.md's Read API, by what it begins with.
ANSWERS = {
    '{"jobs"': api_schema.JobList,
    '{"job_id"': api_schema.Job,
    '{"job"': api_schema.JobDetail,
    '{"nodeid": "t.py::TestC': api_schema.JobTest,
    '{"nodeid": "t.py::test_a"': api_schema.History,
}


def test_every_answer_example_is_one_of_a_model() -> None:
    blocks = re.findall(r"```json\n(.*?)```", READ_API, re.S)
    owners = [[start for start in ANSWERS if block.startswith(start)] for block in blocks]
    assert all(len(found) == 1 for found in owners), owners
    assert sorted(found[0] for found in owners) == sorted(ANSWERS)


@pytest.mark.parametrize("example", examples(READ_API), ids=lambda e: ",".join(list(e)[:2]))
def test_docs_server_md_documents_the_answers_as_the_models_define_them(example: Any) -> None:
    text = json.dumps(example)
    (model,) = [m for start, m in ANSWERS.items() if text.startswith(start)]
    assert differences(example, model, model.__name__) == []


def test_docs_server_md_documents_the_small_answers() -> None:
    assert '`GET /healthz` -> `{"status": "ok"}`' in READ_API
    assert set(api_schema.Health.model_fields) == {"status"}
    assert '`{"deleted": "<job_id>"}`' in READ_API
    assert set(api_schema.Deleted.model_fields) == {"deleted"}
    assert set(api_schema.ErrorAnswer.model_fields) == {"error"}
    assert 'Errors are `{"error": "..."}`' in READ_API


def test_a_difference_is_found() -> None:
    job = examples(READ_API)[1]
    assert differences({**job, "extra": 1}, api_schema.Job, "Job") == [
        "Job.extra: documented, not in Job"
    ]
    del job["ci"]["build"]
    assert differences(job, api_schema.Job, "Job") == ["Job.ci.build: in Ci, not documented"]
    job["ci"]["build"], job["total"] = "1", "120"
    assert differences(job, api_schema.Job, "Job") == [
        "Job.total: documented as '120', the model says <class 'int'>"
    ]


# ---- docs/protocol.md and the event models ----------------------------------------------

PROTOCOL = (DOCS / "protocol.md").read_text()
JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}


def table(title: str, after: str = "") -> dict[str, set[str]]:
    """Field -> the JSON types its row names, of the first table under ``title`` (and
    after the line ``after``). A row may name several fields (`a`, `b`)."""
    text = section(DOCS / "protocol.md", title)
    text = text[text.index(after):] if after else text
    rows: dict[str, set[str]] = {}
    for line in text[text.index("\n|"):].split("\n")[3:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        words = {part.strip().strip("`").split(" ")[0] for part in cells[1].split(" or ")}
        for name in re.findall(r"`(\w+)`", cells[0]):
            rows[name] = words & JSON_TYPES
    return rows


def schema_types(schema: dict[str, Any]) -> set[str]:
    if "anyOf" in schema:
        return {t for option in schema["anyOf"] for t in schema_types(option)}
    if "$ref" in schema:
        return {"object"}
    kind = schema.get("type")
    found = {kind} if isinstance(kind, str) else set(kind or ())
    return found | ({"number"} if "integer" in found else set())


def field_differences(documented: dict[str, set[str]], model: type[BaseModel]) -> list[str]:
    """Names documented and defined alike, and every documented type taken by the model."""
    properties = model.model_json_schema()["properties"]
    problems = [f"{name}: documented, not in {model.__name__}"
                for name in documented if name not in properties]
    problems += [f"{name}: in {model.__name__}, not documented"
                 for name in properties if name not in documented]
    for name, types_ in documented.items():
        taken = schema_types(properties.get(name, {}))
        if name in properties and not types_ <= taken:
            problems.append(f"{name}: documented as {sorted(types_)}, the model takes "
                            f"{sorted(taken)}")
    return problems


COMMON = table("## Fields every event has")
COMMON.update(table("## Identity: duplicates and gaps"))


@pytest.mark.parametrize(
    ("title", "model", "undocumented"),
    [
        ("## `startTestRun`", ingest.StartRunEvent, set()),
        ("## `startTestItem`", ingest.StartItemEvent, set()),
        ("## `stopTestItem`", ingest.StopItemEvent, set()),
        ("## `stopTestRun`", ingest.StopRunEvent, set()),
        # The plugin sends a heartbeat no seq; the receiver checks one all the same.
        ("## `heartbeat`", ingest.HeartbeatEvent, {"seq"}),
    ],
)
def test_docs_protocol_md_documents_each_event_as_its_model(
    title: str, model: type[BaseModel], undocumented: set[str]
) -> None:
    documented = {**COMMON, **table(title)}
    documented.update({name: set() for name in undocumented})
    assert field_differences(documented, model) == []


def test_docs_protocol_md_documents_a_test_entry_as_its_model() -> None:
    entries = table("## `startTestRun`", after="Each entry of `tests`")
    assert field_differences(entries, ingest.TestEntry) == []


def test_docs_protocol_md_names_the_fields_of_nested_objects() -> None:
    start, stop = table("## `startTestRun`"), table("## `stopTestItem`")
    assert start and stop
    text = section(DOCS / "protocol.md", "## `startTestRun`")
    row = next(line for line in text.split("\n") if line.startswith("| `collect_errors`"))
    assert re.findall(r'"(\w+)"', row) == list(ingest.CollectErrorEntry.model_fields)
    text = section(DOCS / "protocol.md", "## `stopTestItem`")
    row = next(line for line in text.split("\n") if line.startswith("| `sections`"))
    assert re.findall(r'"(\w+)"', row) == list(ingest.SectionEntry.model_fields)
    row = next(line for line in section(DOCS / "protocol.md", "## `startTestRun`").split("\n")
               if line.startswith("| `ci`"))
    named = re.findall(r"`(\w+)`", row.split("|")[4])
    assert [n for n in named if n in ingest.CiFields.model_fields] == list(
        ingest.CiFields.model_fields
    )


def test_the_event_types_are_the_protocol_words() -> None:
    kinds = [typing.get_args(m.model_fields["type"].annotation) for m in (
        ingest.StartRunEvent, ingest.StartItemEvent, ingest.StopItemEvent,
        ingest.StopRunEvent, ingest.HeartbeatEvent)]
    assert sorted(k for ks in kinds for k in ks) == sorted(
        (*protocol.EVENT_TYPES, *protocol.UNITTEST_EVENT_TYPES)
    )
    status = ingest.StopItemEvent.model_fields["status"].annotation
    assert typing.get_args(status) == protocol.OUTCOMES
