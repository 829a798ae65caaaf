"""Reward functions: values users rely on, all within [0, 1]."""

from __future__ import annotations

import functools
import sqlite3

import pytest

from lightspan.training import rewards


def test_exact_match_normalizes_and_accepts_several_truths():
    assert rewards.exact_match("The Paris!", "paris") == 1.0
    assert rewards.exact_match("Lyon", ["Paris", "lyon"]) == 1.0
    assert rewards.exact_match("Paris", "Paris, France") == 0.0
    assert rewards.exact_match("The Paris", "paris", normalize=False) == 0.0


def test_token_f1_partial_overlap():
    assert rewards.token_f1("Paris France", "Paris") == pytest.approx(2 / 3)
    assert rewards.token_f1("London", "Paris") == 0.0
    assert rewards.token_f1("", "") == 1.0
    assert rewards.token_f1("x b c", ["y", "b c"]) == pytest.approx(0.8)


def test_format_score_checks_pattern_json_and_length():
    assert rewards.format_score("anything") == 1.0
    assert rewards.format_score("   ") == 0.0
    assert rewards.format_score("<answer>4</answer>", pattern=r"<answer>.*</answer>") == 1.0
    assert rewards.format_score("4", pattern=r"<answer>.*</answer>") == 0.5
    assert rewards.format_score('{"name": "x", "arguments": {}}', json_keys=["name", "arguments"]) == 1.0
    assert rewards.format_score(
        '{"name": "x"}', json_keys=["name", "arguments"], max_chars=5
    ) == pytest.approx(1 / 3)


@pytest.fixture()
def sales_db(tmp_path):
    path = tmp_path / "sales.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE sales(region TEXT, amount INT);"
        "INSERT INTO sales VALUES ('eu', 10), ('eu', 5), ('us', 7);"
    )
    conn.commit()
    conn.close()
    return str(path)


def test_sql_execution_match_compares_results_not_text(sales_db):
    truth = "SELECT region, SUM(amount) FROM sales GROUP BY region"
    same = "```sql\nselect region, sum(amount) as s from sales group by 1\n```"
    assert rewards.sql_execution_match(same, truth, database=sales_db) == 1.0
    assert (
        rewards.sql_execution_match(
            "SELECT region, MAX(amount) FROM sales GROUP BY region", truth, database=sales_db
        )
        == 0.0
    )
    assert rewards.sql_execution_match("SELEC nonsense", truth, database=sales_db) == 0.0
    ordered = "SELECT region FROM sales GROUP BY region ORDER BY region DESC"
    assert (
        rewards.sql_execution_match(
            "SELECT region FROM sales GROUP BY region ORDER BY region", ordered, database=sales_db
        )
        == 0.0
    )
    with pytest.raises(ValueError, match="ground-truth SQL does not run"):
        rewards.sql_execution_match("SELECT 1", "SELECT * FROM missing", database=sales_db)


def test_sql_reward_never_writes(sales_db):
    rewards.sql_execution_match("DELETE FROM sales", "SELECT COUNT(*) FROM sales", database=sales_db)
    assert sqlite3.connect(sales_db).execute("SELECT COUNT(*) FROM sales").fetchone() == (3,)


def test_weighted_spider_style_combination(sales_db):
    spider = rewards.weighted(
        {
            functools.partial(rewards.sql_execution_match, database=sales_db): 0.7,
            functools.partial(rewards.is_valid_sql, database=sales_db): 0.3,
        }
    )
    truth = "SELECT COUNT(*) FROM sales"
    assert spider("SELECT COUNT(*) FROM sales", truth) == pytest.approx(1.0)
    assert spider("SELECT 2", truth) == pytest.approx(0.3)
    assert spider("not sql", truth) == 0.0


def test_weighted_normalizes_weights_and_rejects_bad_ones():
    qa = rewards.weighted([(rewards.token_f1, 8), (rewards.format_score, 2)])
    assert qa("Paris France", "Paris") == pytest.approx(0.8 * 2 / 3 + 0.2)
    with pytest.raises(ValueError, match="negative"):
        rewards.weighted({rewards.token_f1: -1})
    with pytest.raises(ValueError, match="at least one"):
        rewards.weighted({})


def test_score_rows_after_the_fact_then_group_advantages():
    rows = [
        {
            "rollout_id": "a",
            "task_id": "t",
            "step": 0,
            "completion": [{"role": "assistant", "content": "search"}],
        },
        {
            "rollout_id": "a",
            "task_id": "t",
            "step": 1,
            "is_last": True,
            "completion": [{"role": "assistant", "content": "Paris"}],
        },
        {
            "rollout_id": "b",
            "task_id": "t",
            "step": 0,
            "is_last": True,
            "completion": [{"role": "assistant", "content": "Rome"}],
        },
        {"rollout_id": "c", "task_id": "unknown", "step": 0, "completion": "x", "reward": 0.3},
    ]
    scored = rewards.score_rows(rows, rewards.exact_match, {"t": "paris"})
    assert [r.get("reward") for r in scored] == [1.0, 1.0, 0.0, 0.3]
    assert "reward" not in rows[0]  # inputs untouched
    adv = rewards.group_advantages(scored)
    assert adv[0]["advantage"] == adv[1]["advantage"] > 0 > adv[2]["advantage"]
    assert adv[3]["advantage"] == 0.0  # a lone rollout has nothing to be compared with
