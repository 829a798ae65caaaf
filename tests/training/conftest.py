"""Fixtures for training tests: a tiny local model and converter-shaped call rows (schemas/rows.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest.importorskip("torch")
pytest.importorskip("trl")

from lightspan.schemas import rows as R  # noqa: E402

WORDS = ("red", "green", "blue", "gold")
SYSTEM = "You are a helpful assistant."


def task_prompt(i: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Which color is task {i}?"}]


def _one_torch_thread():
    """One torch thread: the same trajectory on any core count, and on a shared 2-core box two threads per
    process made these runs ~5x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: per test (a learning test whose neighbours keep the default) or for a whole module
one_thread = pytest.fixture(_one_torch_thread, name="one_thread")
one_thread_per_module = pytest.fixture(_one_torch_thread, scope="module", name="one_thread_per_module")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    from lightspan.training import build_tiny_model

    texts = [*WORDS] * 4 + [f"Which color is task {i}?" for i in range(8)]
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", texts=texts, seed=0)


def call_row(task: int, rollout: int, word: str, reward: float, advantage: float, **extra) -> dict:
    """One row exactly as the converters write it: every column of CALL_ROW_COLUMNS."""
    row = {
        R.ROLLOUT_ID: f"rollout-{task}-{rollout}",
        R.TASK_ID: f"task-{task}",
        R.ATTEMPT: 0,
        R.STEP: 0,
        R.AGENT_NAME: "color-agent",
        R.TRACE_ID: f"{task:016x}{rollout:016x}",
        R.SPAN_ID: f"{task:08x}{rollout:08x}",
        R.MODEL: "tiny",
        R.PROMPT: task_prompt(task),
        R.COMPLETION: [{"role": "assistant", "content": word}],
        R.PROMPT_TOKEN_IDS: None,
        R.COMPLETION_TOKEN_IDS: None,
        R.COMPLETION_LOGPROBS: None,
        R.REWARD: reward,
        R.ADVANTAGE: advantage,
        R.FINAL_REWARD: reward,
        R.IS_LAST: True,
        R.POLICY_VERSION: -1,  # unknown (issue 16: the converters write it on every call row)
    }
    row.update(extra)
    assert set(row) == set(R.CALL_ROW_COLUMNS)
    return row


def write_rows(rows: list[dict], path: Path) -> Path:
    """Write rows as the converters do: Parquet (.parquet) or JSON Lines (.jsonl)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        with path.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
    return path


@pytest.fixture(scope="session")
def mixed_rows(tiny_model) -> list[dict]:
    """4 tasks x 4 rollouts; half the rollouts right (reward 1), half wrong; some carry token ids + logprobs."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    rows = []
    for task in range(4):
        for rollout in range(4):
            good = rollout % 2 == 0
            word = WORDS[task] if good else WORDS[(task + 1) % 4]
            extra = {}
            if rollout >= 2:  # the serving side returned ids (and, for one, logprobs)
                p_ids = tok.apply_chat_template(
                    task_prompt(task), add_generation_prompt=True, tokenize=True, return_dict=False
                )
                c_ids = tok(word, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
                extra = {R.PROMPT_TOKEN_IDS: list(p_ids), R.COMPLETION_TOKEN_IDS: c_ids}
                if rollout == 3:
                    extra[R.COMPLETION_LOGPROBS] = [-6.0] * len(c_ids)
            rows.append(call_row(task, rollout, word, float(good), 1.0 if good else -1.0, **extra))
    return rows


@pytest.fixture(scope="session")
def kit():
    """The row helpers above, as a fixture (tests run with --import-mode=importlib: no conftest imports)."""
    from types import SimpleNamespace

    return SimpleNamespace(WORDS=WORDS, call_row=call_row, task_prompt=task_prompt, write_rows=write_rows)
