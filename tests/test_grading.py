"""Every exercise graded three ways on the real notebook (make test-long): left blank it fails
with its task, the solution passes, the typical wrong answer fails with the check's lesson."""

import nbformat
import pytest

from detox_helpers import course
from detox_helpers.unattended import notebook

pytestmark = pytest.mark.long


@pytest.fixture(scope="session")
def graded_run(prepared_data):
    """Notebooks 04 and 05 graded once as they stand: the 2-step run 'graded' and its two
    evaluations, which grading notebooks 05 and 06 reads (GRADING_PARAMETERS)."""
    for number in ("04", "05"):
        results = course.grade(notebook(number))
        assert all(result.passed for result in results), results


def prepare(number, request) -> dict:
    """What grading notebook `number` reads: notebook 01's dataset (03 on), the graded run
    (05 on). Returns the parameters to grade it with: notebook 04's blank and wrong answers
    train a run of their own, which would otherwise replace the one 05 and 06 read."""
    if number >= "05":
        request.getfixturevalue("graded_run")
    elif number >= "03":
        request.getfixturevalue("prepared_data")
    return {"overrides": {"run_name": "graded-tests"}} if number == "04" else {}


def graded(tmp_path, item, code, request):
    """Grade a copy of the exercise's notebook with `code` in place of its solution (None: the
    solution as it stands); returns {exercise name: result}."""
    parameters = prepare(item.notebook, request)
    path = notebook(item.notebook)
    answers = {} if code is None else {item.name: code}
    copy = tmp_path / path.name
    nbformat.write(course.with_answers(path, answers), copy)
    return {result.name: result for result in course.grade(copy, **parameters)}


@pytest.mark.parametrize("item", course.EXERCISES, ids=lambda item: item.name)
def test_the_solution_passes(item, tmp_path, request):
    results = graded(tmp_path, item, None, request)
    assert all(result.passed for result in results.values()), results


@pytest.mark.parametrize("item", course.EXERCISES, ids=lambda item: item.name)
def test_left_blank_it_fails_and_says_what_to_write(item, tmp_path, request):
    result = graded(tmp_path, item, course.stub(item.task), request)[item.name]
    assert not result.passed
    assert result.message == f"NotImplementedError: Your turn: {item.task}."


@pytest.mark.parametrize("item", course.EXERCISES, ids=lambda item: item.name)
def test_the_typical_wrong_answer_fails_with_a_message_that_teaches(item, tmp_path, request):
    result = graded(tmp_path, item, item.wrong, request)[item.name]
    assert not result.passed and item.lesson in result.message, result.message


@pytest.mark.parametrize("number", sorted({item.notebook for item in course.EXERCISES}))
def test_a_student_copy_run_unchanged_stops_at_its_first_exercise(number, tmp_path, request):
    parameters = prepare(number, request)
    copy = tmp_path / notebook(number).name
    nbformat.write(course.student_copy(notebook(number)), copy)
    first, *rest = course.grade(copy, **parameters)
    assert first.message == f"NotImplementedError: Your turn: {course.exercise(first.name).task}."
    assert all(not result.passed and "not run" in result.message for result in rest)
