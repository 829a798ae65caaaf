"""Rebuild one rollout from its spans: ordered LLM calls, tool observations, GAP graph and rewards.

Order: the spans form a forest (a rollout may span several traces and processes; a span whose parent
is not in the rollout becomes a root). Roots and siblings are visited by start time, depth first, so
calls made by one sub-agent stay together and a parent's call precedes its children's.
"""

from __future__ import annotations

import re
from typing import Any, cast

from lightspan.schemas import attributes as A
from lightspan.schemas.conventions import agl_rewards, mapped
from lightspan.schemas.settings import is_true

from .content import capture_hint
from .mapping import (
    MappingError,
    foreign_llm,
    foreign_tool,
    has_text,
    maybe_json,
    messages_from_logs,
    parse_json_list,
    parse_messages,
    with_system,
)
from .model import ArrowRef, GapGraph, LLMCall, Reward, ToolObservation, Trajectory
from .reader import LogEvent, PostedReward

_LLM_OPS = A.LLM_OPERATIONS


class SkipRollout(Exception):
    """The rollout cannot become training data; ``reason`` is a short counter key, the message says why."""

    def __init__(self, reason: str, detail: str = "", skipped_calls: list[tuple[str, str]] | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.skipped_calls = skipped_calls or []


def _duplicate_of(
    i: int,
    parent_of: dict[int, int],
    row_call: dict[int, LLMCall],
    same_id: Any,
    start: int,
    end: int,
    prompt: Any,
) -> LLMCall | None:
    """The call this LLM span records again, if any: its nearest LLM ancestor (a second instrumentation
    wrapping the same request), or a call with the same response id overlapping it in time. Calls that
    only share a response id (a server, cache or proxy reusing ids) stay distinct."""
    j = parent_of.get(i)
    while j is not None:
        call = row_call.get(j)
        if call is not None:
            if _same_request(call, start, end, prompt):
                return call
            break
        j = parent_of.get(j)
    for call in same_id:
        if _same_request(call, start, end, prompt):
            return call
    return None


def _without_twins(rewards: list[Reward]) -> list[Reward]:
    """One reward recorded in two forms (lightspan's ``emit_reward`` writes a reward span and the standard
    evaluation event) counts once: an evaluation equal to a reward span's name, value and target goes."""
    spans = {(r.name, r.value, r.step, r.span_id) for r in rewards if r.source == "span"}
    if not spans:
        return rewards
    return [
        r for r in rewards if r.source != "evaluation" or (r.name, r.value, r.step, r.span_id) not in spans
    ]


def _dfs_order(
    cols: dict[str, list[Any]], a: int, b: int
) -> tuple[list[int], list[str], list[str], list[int], int, dict[int, int]]:
    """Span rows in depth-first order, with the agent name, GAP node and GAP level each inherits, and
    each row's parent row."""
    sid, pid = cols["sid"], cols["pid"]
    by_id: dict[str, int] = {}
    for i in range(a, b):
        by_id.setdefault(sid[i], i)
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    missing = 0
    for i in range(a, b):  # rows arrive sorted by start time, so lists stay in start order
        p = pid[i]
        j = by_id.get(p) if p else None
        if j is None or j == i:
            roots.append(i)
            if p:
                missing += 1
        else:
            children.setdefault(j, []).append(i)
    agent, op, node, level = cols["agent"], cols["op"], cols["gap_node"], cols["gap_level"]
    order: list[int] = []
    inh_agent = [""] * (b - a)
    inh_node = [""] * (b - a)
    inh_level = [-1] * (b - a)
    seen = bytearray(b - a)
    pending = list(reversed(roots))
    parent_of: dict[int, int] = {}
    while True:
        while pending:
            i = pending.pop()
            k = i - a
            if seen[k]:
                continue
            seen[k] = 1
            par = parent_of.get(i)
            pk = par - a if par is not None else None
            inh_agent[k] = agent[i] or (inh_agent[pk] if pk is not None else "")
            inh_node[k] = node[i] or (inh_node[pk] if pk is not None else "")
            inh_level[k] = (
                level[i]
                if op[i] == A.OP_GAP_LEVEL or level[i] >= 0
                else (inh_level[pk] if pk is not None else -1)
            )
            order.append(i)
            kids = children.get(i)
            if kids:
                for c in reversed(kids):
                    parent_of[c] = i
                    pending.append(c)
        if len(order) == b - a:
            break
        # Spans only reachable through a parent cycle: visit them as roots, in start order.
        rest = [i for i in range(a, b) if not seen[i - a]]
        missing += len(rest)
        pending = [rest[0]]
    return order, inh_agent, inh_node, inh_level, missing, parent_of


def _texts(prompt: Any) -> tuple[str, ...]:
    """What identifies a request: the user and system messages' text (instrumentations render tool calls
    and assistant turns differently, never the user's words)."""
    msgs = prompt.get() if type(prompt) is ArrowRef else prompt
    return tuple(m.get("content", "") for m in msgs or () if m.get("role") in ("user", "system"))


def _overlap(c: LLMCall, start: int, end: int) -> bool:
    return c.start_ns <= end and start <= c.end_ns


def _same_request(c: LLMCall, start: int, end: int, prompt: Any) -> bool:
    """One request recorded twice (two instrumentations, a proxy and the client): overlapping in time,
    with the same prompt (or content on one of them only)."""
    if not _overlap(c, start, end):
        return False
    mine, theirs = _texts(prompt), _texts(c.raw("prompt"))
    return not mine or not theirs or mine == theirs


def _value(value: Any) -> Any:
    """A field's Python value (an :class:`ArrowRef` read)."""
    return value.get() if isinstance(value, ArrowRef) else value


def _empty(value: Any) -> bool:
    return not _value(value)


#: Which reward wins when several sources give one (name, target): the higher rank, then the later one.
SOURCE_RANK = {"posted": 3, "span": 2, "evaluation": 1, "agentlightning": 0}


def _score(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and value == value and abs(value) != float("inf") else None


def _depends(raw: str) -> list[str]:
    if not raw:
        return []
    data = maybe_json(raw)
    if isinstance(data, list):
        return [str(d) for d in data]
    return [d.strip() for d in str(data).split(",") if d.strip()]


def _graph_from_json(raw: str) -> dict[str, dict[str, Any]]:
    data = maybe_json(raw)
    if not isinstance(data, dict):
        raise MappingError(f"{A.GAP_GRAPH} must be a JSON object with nodes, got {type(data).__name__}")
    nodes: dict[str, dict[str, Any]] = {}
    for n in data.get("nodes") or []:
        if not isinstance(n, dict):
            continue
        nid = str(n.get("id", n.get("node_id", n.get("name", ""))))
        if not nid:
            continue
        deps = n.get("depends", n.get("dependencies", n.get("deps", [])))
        nodes[nid] = {
            "id": nid,
            "description": str(n.get("description", n.get("task", ""))),
            "depends": [str(d) for d in deps] if isinstance(deps, list) else _depends(str(deps)),
            "level": n.get("level") if isinstance(n.get("level"), int) else None,
        }
    for e in data.get("edges") or []:
        src, dst = (
            (e[0], e[1])
            if isinstance(e, list | tuple) and len(e) >= 2
            else (
                (e.get("source", e.get("from")), e.get("target", e.get("to")))
                if isinstance(e, dict)
                else (None, None)
            )
        )
        if (
            src is not None
            and dst is not None
            and str(dst) in nodes
            and str(src) not in nodes[str(dst)]["depends"]
        ):
            nodes[str(dst)]["depends"].append(str(src))
    return nodes


def _levels(nodes: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Topological levels: a node's level is one more than its deepest dependency (cycles cut)."""
    memo: dict[str, int] = {}

    def depth(nid: str, stack: frozenset[str]) -> int:
        if nid in memo:
            return memo[nid]
        node = nodes[nid]
        if node.get("level") is not None:
            memo[nid] = int(node["level"])
            return memo[nid]
        deps = [d for d in node["depends"] if d in nodes and d not in stack]
        memo[nid] = 1 + max((depth(d, stack | {nid}) for d in deps), default=-1)
        return memo[nid]

    for nid in nodes:
        nodes[nid]["level"] = depth(nid, frozenset())
    out: list[list[str]] = [[] for _ in range(max((n["level"] for n in nodes.values()), default=-1) + 1)]
    for nid, n in nodes.items():
        out[n["level"]].append(nid)
    return out


def rebuild(
    rollout_id: str,
    cols: dict[str, list[Any]],
    a: int,
    b: int,
    posted: list[PostedReward] | None = None,
    *,
    logs: dict[str, list[LogEvent]] | None = None,
    agent_match: re.Pattern[str] | None = None,
    reward_name: str = A.REWARD_DEFAULT_NAME,
    require_reward: bool = True,
) -> Trajectory:
    """The rollout in rows ``[a, b)`` of ``cols`` as a :class:`Trajectory`; raises :class:`SkipRollout`.

    ``logs`` are the GenAI log events of the rollout's spans by span id (message content, evaluations).
    """
    order, inh_agent, inh_node, inh_level, missing, parent_of = _dfs_order(cols, a, b)
    traj = Trajectory(rollout_id=rollout_id)
    logs = logs or {}
    has_evals = any(cols["evals"][i] for i in range(a, b))
    if missing:
        traj.warnings.append(f"{missing} span(s) with a parent outside the rollout were treated as roots")
    C = cols
    ops, foreign, rval = C["op"], C["foreign"], C["rval"]
    by_response: dict[str, list[LLMCall]] = {}
    span_to_call: dict[str, LLMCall] = {}
    row_call: dict[int, LLMCall] = {}  # LLM span row -> its call (for nested duplicates)
    llm_rows: set[int] = set()
    gap_nodes: dict[str, dict[str, Any]] = {}
    has_gap = False
    traces: dict[str, None] = {}
    trace_c, task_c, task_type_c = C["trace"], C["task"], C["task_type"]
    task_id = task_type = ""
    for i in order:
        k = i - a
        traces.setdefault(trace_c[i], None)
        if not task_id and task_c[i]:
            task_id = task_c[i]
        if not task_type and task_type_c[i]:
            task_type = task_type_c[i]
        op = ops[i]
        fa = foreign[i]
        try:
            # An unmapped foreign row: map a copy of its attributes as the collector would, then read them.
            fm = mapped(fa, C["name"][i]) if fa and not op else None
            if op in _LLM_OPS or (fm and (fcall := foreign_llm(fm)) is not None):
                if op in _LLM_OPS:
                    if is_true(C["suppressed"][i]):  # lenient: an odd marker is not a suppression
                        continue
                    # ClickHouse parsed what it could exactly (``*_ok``): those stay Arrow until read.
                    row = C["row"][i]  # the span's row in the parsed Arrow columns
                    if C["in_ok"][i]:
                        prompt = ArrowRef(C["in_arr"], row)
                    else:
                        prompt = with_system(parse_messages(C["in_msgs"][i]), C["sys"][i])
                    if C["out_ok"][i]:
                        completion = ArrowRef(C["out_arr"], row)
                    else:
                        completion = parse_messages(C["out_msgs"][i], A.GEN_AI_OUTPUT_MESSAGES, "assistant")
                    model, in_tok, out_tok = C["model"][i], C["in_tok"][i], C["out_tok"][i]
                    p_ids = (
                        ArrowRef(C["p_arr"], row)
                        if C["p_ok"][i]
                        else parse_json_list(C["p_ids"][i], A.LLM_PROMPT_TOKEN_IDS)
                    )
                    r_ids = (
                        ArrowRef(C["r_arr"], row)
                        if C["r_ok"][i]
                        else parse_json_list(C["r_ids"][i], A.LLM_RESPONSE_TOKEN_IDS)
                    )
                    lps = (
                        ArrowRef(C["l_arr"], row)
                        if C["l_ok"][i]
                        else parse_json_list(C["lps"][i], A.LLM_RESPONSE_LOGPROBS, float)
                    )
                else:
                    prompt, completion = fcall["prompt"], fcall["completion"]
                    model, in_tok, out_tok = fcall["model"], fcall["input_tokens"], fcall["output_tokens"]
                    p_ids, r_ids, lps = fcall["prompt_token_ids"], fcall["completion_token_ids"], None
                sid_i = C["sid"][i]
                llm_rows.add(i)
                events = logs.get(sid_i)
                if events and (_empty(prompt) or _empty(completion)):  # content sent as log records
                    log_prompt, log_completion = messages_from_logs(events)
                    prompt = log_prompt if _empty(prompt) and log_prompt else prompt
                    completion = log_completion if _empty(completion) and log_completion else completion
                resp_id = C["resp_id"][i]
                start_i, end_i = C["start"][i], C["start"][i] + C["dur"][i]
                prior = _duplicate_of(
                    i, parent_of, row_call, by_response.get(resp_id, ()), start_i, end_i, prompt
                )
                if prior is not None:  # a second span of the same logical call: fill gaps, keep one
                    prior.prompt_token_ids = prior.prompt_token_ids or p_ids
                    prior.completion_token_ids = prior.completion_token_ids or r_ids
                    prior.completion_logprobs = prior.completion_logprobs or lps
                    if _empty(prior.raw("prompt")):
                        prior.prompt = cast(Any, prompt)  # an ArrowRef stays lazy
                    if _empty(prior.raw("completion")):
                        prior.completion = cast(Any, completion)
                    prior.input_tokens = prior.input_tokens or in_tok
                    prior.output_tokens = prior.output_tokens or out_tok
                    prior.response_id = prior.response_id or resp_id
                    prior.model = prior.model or model
                    span_to_call[sid_i] = prior
                    row_call[i] = prior
                    continue
                fast_ok = (
                    op in _LLM_OPS and C["in_ok"][i] and C["out_ok"][i] and not C["no_io"][i] and not events
                )
                if not fast_ok:
                    p_msgs, c_msgs = _value(prompt), _value(completion)
                    # An empty reply that has token ids (the model ended its turn at once) is a real
                    # action RL must see; only a side with neither text nor token ids is missing.
                    missing_content = [
                        w
                        for w, m, ids in (("prompt", p_msgs, p_ids), ("completion", c_msgs, r_ids))
                        if not has_text(m) and not _value(ids)
                    ]
                    if missing_content:
                        traj.skipped_calls.append(
                            (
                                "no_content",
                                f"span {sid_i} has no {' and no '.join(missing_content)} content; "
                                + capture_hint(C["scope"][i]),
                            )
                        )
                        continue
                call = LLMCall.fast(
                    C["sid"][i],
                    trace_c[i],
                    C["pid"][i] or None,
                    C["start"][i],
                    C["start"][i] + C["dur"][i],
                    prompt,
                    completion,
                    model,
                    inh_agent[k],
                    resp_id,
                    p_ids,
                    r_ids,
                    lps,
                    in_tok,
                    out_tok,
                    inh_node[k],
                    len(traj.calls),
                )
                if agent_match is not None:
                    call.trainable = agent_match.search(call.agent_name) is not None
                traj.calls.append(call)
                span_to_call[call.span_id] = call
                row_call[i] = call
                if resp_id:
                    by_response.setdefault(resp_id, []).append(call)
            elif op == A.OP_EXECUTE_TOOL or (fm and (ftool := foreign_tool(fm)) is not None):
                if op == A.OP_EXECUTE_TOOL:
                    name, args, result = (
                        C["tool"][i],
                        maybe_json(C["tool_args"][i]),
                        maybe_json(C["tool_result"][i]),
                    )
                else:
                    name, args, result = ftool["tool_name"], ftool["arguments"], ftool["result"]
                error = (C["status_msg"][i] or "error") if C["status"][i].upper().endswith("ERROR") else None
                traj.tools.append(
                    ToolObservation(
                        span_id=C["sid"][i],
                        parent_span_id=C["pid"][i] or None,
                        start_ns=C["start"][i],
                        end_ns=C["start"][i] + C["dur"][i],
                        tool_name=name,
                        arguments=args,
                        result=result,
                        error=error,
                        gap_node_id=inh_node[k],
                    )
                )
            elif op == A.OP_PLAN:
                has_gap = True
                if C["gap_graph"][i]:
                    for nid, node in _graph_from_json(C["gap_graph"][i]).items():
                        gap_nodes.setdefault(nid, node)
            elif op == A.OP_GAP_NODE and C["gap_node"][i]:
                has_gap = True
                nid = C["gap_node"][i]
                node = gap_nodes.setdefault(nid, {"id": nid, "description": "", "depends": [], "level": None})
                node["depends"] = node["depends"] or _depends(C["gap_depends"][i])
                if inh_level[k] >= 0:
                    node["level"] = inh_level[k]
                if C["gap_status"][i]:
                    node["status"] = C["gap_status"][i]
            elif op == A.OP_GAP_LEVEL:
                has_gap = True
        except MappingError as exc:
            raise SkipRollout("bad_json", f"span {C['sid'][i]}: {exc}") from None
        # Rewards: lightspan reward spans (mapped or contrib rows), else Agent Lightning annotations.
        if rval[i] is not None:
            step_raw = C["r_step"][i]
            try:
                step = int(step_raw) if step_raw else None
            except ValueError:
                step = None
            traj.rewards.append(
                Reward(
                    value=float(rval[i]),
                    name=C["rname"][i] or A.REWARD_DEFAULT_NAME,
                    source="span",
                    step=step if step is not None and step >= 0 else None,
                    span_id=C["r_span"][i] or None,
                    timestamp_ns=C["start"][i],
                )
            )
        elif fa:
            for name, value in agl_rewards(C["name"][i], fa):
                traj.rewards.append(
                    Reward(value=value, name=name, source="agentlightning", timestamp_ns=C["start"][i])
                )
    # gen_ai.evaluation.result, as span events or log records: a judged LLM call gets a step reward,
    # any other span (the root, an agent) a rollout reward.
    for i in order:
        sid_i = C["sid"][i]
        evals: list[tuple[dict[str, str], int]] = []
        if has_evals and C["evals"][i]:
            evals = [(dict(m), t) for m, t in zip(C["evals"][i], C["eval_ts"][i], strict=False)]
        evals += [
            (e.attributes, e.timestamp_ns)
            for e in logs.get(sid_i, ())
            if e.name == A.GEN_AI_EVALUATION_RESULT
        ]
        for attrs, ts in evals:
            value = _score(attrs.get(A.GEN_AI_EVALUATION_SCORE_VALUE))
            name = attrs.get(A.GEN_AI_EVALUATION_NAME) or A.REWARD_DEFAULT_NAME
            if value is None:
                traj.warnings.append(
                    f"evaluation {name!r} on span {sid_i} has no numeric {A.GEN_AI_EVALUATION_SCORE_VALUE}"
                )
                continue
            traj.rewards.append(
                Reward(
                    value=value,
                    name=name,
                    source="evaluation",
                    span_id=sid_i if i in llm_rows else None,
                    timestamp_ns=ts or C["start"][i],
                )
            )
    for p in posted or ():
        traj.rewards.append(
            Reward(
                value=p.value,
                name=p.name,
                source="posted",
                step=p.step if p.step >= 0 else None,
                span_id=p.target_span_id or None,
                timestamp_ns=p.timestamp_ns,
            )
        )
    # Rollout-level metadata.
    traj.task_id, traj.task_type = task_id, task_type
    traj.trace_ids = list(traces)
    traj.created_ns = C["start"][a] if b > a else 0
    traj.attempt = max((C["attempt"][i] for i in range(a, b)), default=0)
    root = order[0] if order else a
    traj.service_name = C["svc"][root] if b > a else ""
    # The agent: the first gen_ai.agent.name (or foreign agent name) met, else the root span's name.
    traj.agent_name = next((inh_agent[i - a] for i in order if inh_agent[i - a]), "") or (
        C["name"][root] if b > a else ""
    )
    if has_gap or gap_nodes:
        levels = _levels(gap_nodes)
        traj.gap = GapGraph(
            nodes=list(gap_nodes.values()),
            edges=[[d, n["id"]] for n in gap_nodes.values() for d in n["depends"]],
            levels=levels,
        )
    # Targeted rewards point at calls by span id (any span of a deduplicated call) or by step.
    for r in traj.rewards:
        if r.span_id is not None and r.step is None:
            call = span_to_call.get(r.span_id)
            if call is not None:
                r.step = call.step
            else:
                traj.warnings.append(f"reward {r.name!r} targets span {r.span_id} which is no LLM call here")
        if r.step is not None and r.step >= len(traj.calls):
            traj.warnings.append(
                f"reward {r.name!r} targets step {r.step} but the rollout has {len(traj.calls)} calls"
            )
    traj.rewards = _without_twins(traj.rewards)
    final = [r for r in traj.rewards if r.name == reward_name and r.step is None and r.span_id is None]
    final.sort(key=lambda r: (SOURCE_RANK.get(r.source, 0), r.timestamp_ns or 0))
    traj.final_reward = final[-1].value if final else None
    if not traj.calls:
        if traj.skipped_calls:
            reason, detail = traj.skipped_calls[0]
            raise SkipRollout(reason, detail, traj.skipped_calls)
        raise SkipRollout("no_llm_calls", f"rollout {rollout_id} has {b - a} spans and no LLM call")
    if not traj.trainable_calls:
        raise SkipRollout(
            "no_matching_calls", f"no call's agent matches {agent_match.pattern if agent_match else ''!r}"
        )
    if (
        require_reward
        and traj.final_reward is None
        and not any(r.step is not None and r.name == reward_name for r in traj.rewards)
    ):
        raise SkipRollout("no_reward", f"rollout {rollout_id} has no {reward_name!r} reward")
    return traj


__all__ = ["SkipRollout", "rebuild"]
