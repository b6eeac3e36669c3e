"""Kaggle's side after the gateway: the AIMO3 scorer's format rules on `submission.parquet`.

The AIMO3 gateway writes whatever frames `predict` returned (its own validation checks only the row
count); the scorer then refuses a submission whose `answer` column is missing, is not of an integer
type, or holds a value outside 0..99999 ("answers are integers 0..99999"), or whose ids are not the test
set's. A refused submission is lost, like a failed one: this checks all of it.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

ANSWER_RANGE = (0, 99_999)


class SubmissionRefused(Exception):
    pass


def score_submission(submission_path: str | Path, test_csv: str | Path) -> pl.DataFrame:
    """The submission, checked; raises SubmissionRefused naming the first rule it breaks."""
    submission = pl.read_parquet(submission_path)
    test = pl.read_csv(test_csv)
    if submission.columns != ["id", "answer"]:
        raise SubmissionRefused(f"columns are {submission.columns}, not ['id', 'answer']")
    answers = submission["answer"]
    if not answers.dtype.is_integer():
        raise SubmissionRefused(f"answer is of type {answers.dtype}, not an integer")
    if answers.null_count():
        raise SubmissionRefused(f"{answers.null_count()} answer(s) missing")
    low, high = ANSWER_RANGE
    outside = submission.filter((pl.col("answer") < low) | (pl.col("answer") > high))
    if outside.height:
        raise SubmissionRefused(f"answers outside {low}..{high}: {outside['answer'].to_list()}")
    if sorted(map(str, submission["id"])) != sorted(map(str, test["id"])):
        raise SubmissionRefused("the ids are not the test set's, once each")
    return submission
