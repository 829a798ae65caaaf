"""Reference check: lightspan's converter vs Agent Lightning's ``TracerTraceToTriplet`` on the same spans.

Agent Lightning lives in its own venv (``.envs/agl``, Python 3.12; never a lightspan dependency)::

    /root/.pyenv/versions/3.12.1/bin/python -m venv .envs/agl && .envs/agl/bin/pip install agentlightning==0.3.0
    .venv/bin/python benchmarks/compare_agentlightning.py            # prints a table, exit 1 on a mismatch

The cases are spans as Agent Lightning's tracer records them (OpenLLMetry ``gen_ai.prompt.N.*`` keys,
``prompt_token_ids``/``response_token_ids`` lists, ``agentlightning.annotation`` rewards). The lightspan side
writes them into an embedded store the way the OpenTelemetry Collector's ClickHouse exporter does (every
attribute a string) and converts them; the Agent Lightning side builds the same spans as OpenTelemetry
``ReadableSpan`` objects and runs the adapter. This file is also the Agent Lightning side (``--agl-side``,
``--agl-bench``), run by the other venv's interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AGL_PYTHON = REPO / ".envs" / "agl" / "bin" / "python"
LLM_SPAN = "openai.chat.completion"
EPOCH_MS = 1_795_435_200_000  # 2026-11-23T12:00:00Z


# ----------------------------------------------------------------------------- cases (plain data)
def _span(
    sid: int, name: str, attrs: dict, parent: int | None, start_ms: int, end_ms: int, rollout: str
) -> dict:
    return {
        "rollout_id": rollout,
        "trace_id": f"{abs(hash(rollout)) % (1 << 120):032x}",
        "span_id": f"{sid:016x}",
        "parent_id": f"{parent:016x}" if parent else None,
        "name": name,
        "start_ns": (EPOCH_MS + start_ms) * 1_000_000,
        "end_ns": (EPOCH_MS + end_ms) * 1_000_000,
        "attributes": {"agentlightning.rollout_id": rollout, "agentlightning.attempt_id": "1", **attrs},
    }


def _llm(
    prompt: list[tuple[str, str]], answer: str, resp_id: str, p_ids: list[int], r_ids: list[int]
) -> dict:
    a = {
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "m",
        "gen_ai.response.id": resp_id,
        "prompt_token_ids": p_ids,
        "response_token_ids": r_ids,
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": answer,
    }
    for i, (role, content) in enumerate(prompt):
        a[f"gen_ai.prompt.{i}.role"] = role
        a[f"gen_ai.prompt.{i}.content"] = content
    return a


def _reward(value: float) -> dict:
    return {"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": value}


def cases() -> dict[str, dict]:
    """name -> {"spans": [...], "agent_match": regex or None, "note": why it is interesting}."""
    out: dict[str, dict] = {}
    r = "single"
    out[r] = {
        "note": "one call, final reward",
        "agent_match": None,
        "spans": [
            _span(1, "agent", {"agent.name": "solver"}, None, 0, 100, r),
            _span(2, LLM_SPAN, _llm([("user", "2+3?")], "5", "resp-s1", [1, 2], [3]), 1, 10, 20, r),
            _span(3, "agentlightning.annotation", _reward(1.0), 1, 30, 30, r),
        ],
    }
    r = "multi_turn_tools"
    out[r] = {
        "note": "two calls with a tool between them",
        "agent_match": None,
        "spans": [
            _span(1, "agent", {"agent.name": "solver"}, None, 0, 100, r),
            _span(
                2,
                LLM_SPAN,
                _llm([("system", "sys"), ("user", "q")], "call tool", "resp-m1", [1, 2], [3, 4]),
                1,
                10,
                20,
                r,
            ),
            _span(3, "tool search", {"tool.name": "search"}, 1, 21, 25, r),
            _span(
                4,
                LLM_SPAN,
                _llm(
                    [("system", "sys"), ("user", "q"), ("assistant", "call tool"), ("tool", "res")],
                    "final",
                    "resp-m2",
                    [1, 2, 3, 4, 5],
                    [6],
                ),
                1,
                30,
                40,
                r,
            ),
            _span(5, "agentlightning.annotation", _reward(0.5), 1, 50, 50, r),
        ],
    }
    r = "duplicate_response_id"
    out[r] = {
        "note": "an outer and an inner span of one call (same response id)",
        "agent_match": None,
        "spans": [
            _span(1, "agent", {"agent.name": "solver"}, None, 0, 100, r),
            _span(2, LLM_SPAN, _llm([("user", "q")], "a", "resp-d1", [1], [2]), 1, 10, 30, r),
            _span(3, LLM_SPAN, _llm([("user", "q")], "a", "resp-d1", [1], [2]), 2, 11, 29, r),
            _span(4, "agentlightning.annotation", _reward(1.0), 1, 50, 50, r),
        ],
    }
    r = "multi_agent"
    out[r] = {
        "note": "two agents, only the coder's calls are trained (agent_match)",
        "agent_match": "coder",
        "spans": [
            _span(1, "agent", {"agent.name": "planner"}, None, 0, 100, r),
            _span(2, LLM_SPAN, _llm([("user", "plan")], "plan ok", "resp-a1", [1], [2]), 1, 5, 9, r),
            _span(3, "agent", {"agent.name": "coder"}, 1, 10, 90, r),
            _span(4, LLM_SPAN, _llm([("user", "code")], "print(1)", "resp-a2", [3], [4]), 3, 20, 30, r),
            _span(5, LLM_SPAN, _llm([("user", "fix")], "print(2)", "resp-a3", [5], [6]), 3, 40, 50, r),
            _span(6, "agentlightning.annotation", _reward(0.25), 1, 95, 95, r),
        ],
    }
    r = "intermediate_rewards"
    out[r] = {
        "note": "a reward after each call; the last one is the final reward",
        "agent_match": None,
        "spans": [
            _span(1, "agent", {"agent.name": "solver"}, None, 0, 100, r),
            _span(2, LLM_SPAN, _llm([("user", "s1")], "a1", "resp-i1", [1], [2]), 1, 10, 20, r),
            _span(3, "agentlightning.annotation", _reward(0.2), 1, 21, 21, r),
            _span(4, LLM_SPAN, _llm([("user", "s2")], "a2", "resp-i2", [3], [4]), 1, 30, 40, r),
            _span(5, "agentlightning.annotation", _reward(0.9), 1, 41, 41, r),
        ],
    }
    r = "missing_parent"
    out[r] = {
        "note": "the agent span was never exported (spans point at a missing parent)",
        "agent_match": None,
        "spans": [
            _span(2, LLM_SPAN, _llm([("user", "q1")], "a1", "resp-p1", [1], [2]), 99, 10, 20, r),
            _span(3, LLM_SPAN, _llm([("user", "q2")], "a2", "resp-p2", [3], [4]), 99, 30, 40, r),
            _span(4, "agentlightning.annotation", _reward(1.0), 99, 50, 50, r),
        ],
    }
    return out


# ----------------------------------------------------------------------------- Agent Lightning side
def _readable(spans: list[dict]) -> list:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, TraceFlags

    out = []
    for s in spans:
        ctx = SpanContext(int(s["trace_id"], 16), int(s["span_id"], 16), False, TraceFlags(1))
        parent = (
            SpanContext(int(s["trace_id"], 16), int(s["parent_id"], 16), False, TraceFlags(1))
            if s["parent_id"]
            else None
        )
        out.append(
            ReadableSpan(
                name=s["name"],
                context=ctx,
                parent=parent,
                attributes=s["attributes"],
                start_time=s["start_ns"],
                end_time=s["end_ns"],
            )
        )
    return out


def agl_side(path: str) -> None:
    # agentlightning lives in its own venv (see the module docstring), never in lightspan's: the type
    # checker is told these imports may be missing.
    import agentlightning  # pyright: ignore[reportMissingImports]
    from agentlightning import TracerTraceToTriplet  # pyright: ignore[reportMissingImports]
    from agentlightning.emitter.reward import find_final_reward  # pyright: ignore[reportMissingImports]

    result: dict = {"version": agentlightning.__version__ if hasattr(agentlightning, "__version__") else "?"}
    for name, case in json.loads(Path(path).read_text()).items():
        spans = _readable(case["spans"])
        adapter = TracerTraceToTriplet(
            llm_call_match=r"openai\.chat\.completion", agent_match=case["agent_match"]
        )
        try:
            triplets = adapter.adapt(spans)
        except Exception as exc:  # recorded as a difference, not a crash of the comparison
            result[name] = {"error": f"{type(exc).__name__}: {exc}", "calls": [], "final_reward": None}
            continue
        result[name] = {
            "calls": [
                {
                    "prompt": [
                        {"role": m.get("role"), "content": m.get("content")}
                        for m in (t.prompt.get("raw_content") or [])
                    ],
                    "response": [m.get("content") for m in (t.response.get("raw_content") or [])],
                    "prompt_token_ids": t.prompt.get("token_ids"),
                    "response_token_ids": t.response.get("token_ids"),
                    "reward": t.reward,
                }
                for t in triplets
            ],
            "final_reward": find_final_reward(spans),
        }
    print(json.dumps(result))


def agl_bench(path: str) -> None:
    """Time TracerTraceToTriplet on exported benchmark spans (lightspan keys turned into Agent Lightning's)."""
    import agentlightning  # pyright: ignore[reportMissingImports]
    from agentlightning import TracerTraceToTriplet  # pyright: ignore[reportMissingImports]

    by_rollout: dict[str, list[dict]] = {}
    for line in Path(path).read_text().splitlines():
        s = json.loads(line)
        a = s["attributes"]
        if a.get("gen_ai.operation.name") == "chat":
            for i, m in enumerate(json.loads(a.pop("gen_ai.input.messages"))):
                a[f"gen_ai.prompt.{i}.role"] = m["role"]
                a[f"gen_ai.prompt.{i}.content"] = "".join(p.get("content", "") for p in m.get("parts", []))
            out = json.loads(a.pop("gen_ai.output.messages"))
            a["gen_ai.completion.0.role"] = "assistant"
            a["gen_ai.completion.0.content"] = "".join(p.get("content", "") for p in out[0]["parts"])
            a["prompt_token_ids"] = json.loads(a.pop("lightspan.llm.prompt_token_ids"))
            a["response_token_ids"] = json.loads(a.pop("lightspan.llm.response_token_ids"))
            s["name"] = LLM_SPAN
        if "lightspan.reward.value" in a:
            a["agentlightning.reward.0.name"] = "primary"
            a["agentlightning.reward.0.value"] = float(a["lightspan.reward.value"])
        by_rollout.setdefault(s["rollout_id"], []).append(s)
    readable = {rid: _readable(spans) for rid, spans in by_rollout.items()}
    adapter = TracerTraceToTriplet(llm_call_match=r"openai\.chat\.completion")
    t0 = time.perf_counter()
    triplets = sum(len(adapter.adapt(spans)) for spans in readable.values())
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "version": getattr(agentlightning, "__version__", "?"),
                "rollouts": len(readable),
                "spans": sum(len(v) for v in readable.values()),
                "triplets": triplets,
                "seconds": seconds,
            }
        )
    )


# ----------------------------------------------------------------------------- lightspan side
def lightspan_side(all_cases: dict[str, dict]) -> dict:
    from datetime import datetime, timezone

    from lightspan.converters import ConvertConfig, Selection, iter_trajectories
    from lightspan.schemas import ddl
    from lightspan.storage import apply_schema, connect

    store = tempfile.mkdtemp(prefix="lightspan-compare-")
    dsn = f"chdb://{store}?database=cmp"
    client = connect(dsn)
    apply_schema(client, database="cmp")
    rows = []
    for case in all_cases.values():
        for s in case["spans"]:
            rows.append(
                [
                    datetime.fromtimestamp(s["start_ns"] / 1e9, tz=timezone.utc),
                    s["trace_id"],
                    s["span_id"],
                    s["parent_id"] or "",
                    s["name"],
                    "svc",
                    {k: v if isinstance(v, str) else json.dumps(v) for k, v in s["attributes"].items()},
                    s["end_ns"] - s["start_ns"],
                ]
            )
    client.insert(
        f"cmp.{ddl.SPANS_TABLE}",
        rows,
        column_names=[
            "Timestamp",
            "TraceId",
            "SpanId",
            "ParentSpanId",
            "SpanName",
            "ServiceName",
            "SpanAttributes",
            "Duration",
        ],
    )
    out: dict = {}
    for name, case in all_cases.items():
        cfg = ConvertConfig(
            dsn=dsn,
            selection=Selection(rollout_ids=[name]),
            agent_match=case["agent_match"],
            credit="per_step",
        )
        trajs = list(iter_trajectories(cfg))
        t = trajs[0]
        out[name] = {
            "calls": [
                {
                    "prompt": c.prompt,
                    "response": [m["content"] for m in c.completion],
                    "prompt_token_ids": c.prompt_token_ids,
                    "response_token_ids": c.completion_token_ids,
                    "reward": c.reward,
                }
                for c in t.trainable_calls
            ],
            "final_reward": t.final_reward,
        }
    return out


def compare(ls: dict, agl: dict) -> list[tuple[str, str, str]]:
    """(case, field, verdict) rows; verdict is 'same' or a short description of the difference."""
    rows = []
    for name in ls:
        a, b = ls[name], agl[name]
        if b.get("error"):
            rows.append((name, "adapter", f"agentlightning raised {b['error']}"))
        rows.append(
            (
                name,
                "number of calls",
                "same"
                if len(a["calls"]) == len(b["calls"])
                else f"lightspan {len(a['calls'])} vs agentlightning {len(b['calls'])}",
            )
        )
        for fld in ("prompt", "response", "prompt_token_ids", "response_token_ids"):
            same = [x[fld] for x in a["calls"]] == [x[fld] for x in b["calls"]]
            rows.append(
                (
                    name,
                    fld,
                    "same"
                    if same
                    else f"lightspan {[x[fld] for x in a['calls']]} vs agentlightning {[x[fld] for x in b['calls']]}",
                )
            )
        rows.append(
            (
                name,
                "final reward",
                "same"
                if a["final_reward"] == b["final_reward"]
                else f"lightspan {a['final_reward']} vs agentlightning {b['final_reward']}",
            )
        )
        ra, rb = [x["reward"] for x in a["calls"]], [x["reward"] for x in b["calls"]]
        rows.append(
            (
                name,
                "per-call reward (lightspan per_step)",
                "same" if ra == rb else f"lightspan {ra} vs agentlightning {rb}",
            )
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agl-side", metavar="CASES_JSON", help=argparse.SUPPRESS)
    ap.add_argument("--agl-bench", metavar="SPANS_JSONL", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help="print the comparison as JSON")
    args = ap.parse_args()
    if args.agl_side:
        return agl_side(args.agl_side)
    if args.agl_bench:
        return agl_bench(args.agl_bench)
    if not AGL_PYTHON.exists():
        sys.exit(f"Agent Lightning venv not found at {AGL_PYTHON}; see this script's docstring")
    all_cases = cases()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(all_cases, fh)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # no network from the import of litellm
    proc = subprocess.run(
        [str(AGL_PYTHON), __file__, "--agl-side", fh.name], capture_output=True, text=True, env=env
    )
    if proc.returncode:
        sys.exit(f"Agent Lightning side failed:\n{proc.stderr[-3000:]}")
    agl = json.loads(proc.stdout.strip().splitlines()[-1])
    ls = lightspan_side(all_cases)
    rows = compare(ls, agl)
    if args.json:
        print(json.dumps({"agentlightning": agl.get("version"), "rows": rows}, indent=1))
    else:
        print(f"agentlightning {agl.get('version')} TracerTraceToTriplet vs lightspan")
        for case, fld, verdict in rows:
            print(f"{case:22} {fld:38} {verdict}")
    expected_diffs: set[tuple[str, str]] = set()
    core = [
        r
        for r in rows
        if r[1]
        in ("number of calls", "prompt", "response", "prompt_token_ids", "response_token_ids", "final reward")
        and r[2] != "same"
        and (r[0], r[1]) not in expected_diffs
    ]
    sys.exit(1 if core else 0)


if __name__ == "__main__":
    main()
