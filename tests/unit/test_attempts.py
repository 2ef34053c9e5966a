"""The attempt budget: how many attempts silence needs, from resolved first and second attempts."""

from leadline.core.attempts import AttemptBudget, attempts_for


def budget(first: tuple[int, int], second: tuple[int, int], ceiling: int = 11, planned: int = 1000) -> AttemptBudget:
    b = AttemptBudget(ceiling, planned)
    for answered, count in ((True, first[0]), (False, first[1])):
        for _ in range(count):
            b.resolved(1, answered)
    for answered, count in ((True, second[0]), (False, second[1])):
        for _ in range(count):
            b.resolved(2, answered)
    return b


def test_a_clean_path_with_few_silent_ports_needs_two() -> None:
    assert budget((990, 10), (0, 10)).needed(any_answered=True, started=1000, capped=False) == 2


def test_no_answer_yet_gives_two_and_a_cap_gives_the_users_limit() -> None:
    assert budget((0, 0), (0, 0)).needed(any_answered=False, started=0, capped=False) == 2
    assert budget((500, 500), (0, 0)).needed(any_answered=True, started=1000, capped=True) == 11


def test_loss_asks_for_more_attempts_up_to_the_ceiling() -> None:
    # 30% loss: 300 of 1000 first attempts silent, 70% of second attempts answered.
    lossy = budget((700, 300), (210, 90))
    assert 4 <= lossy.needed(any_answered=True, started=1000, capped=False) <= 11
    assert budget((700, 300), (210, 90), ceiling=3).needed(any_answered=True, started=1000, capped=False) == 3


def test_attempts_for_grows_with_loss() -> None:
    assert attempts_for(0.0, 1000) == 1
    assert attempts_for(0.1, 1000) < attempts_for(0.3, 1000) < attempts_for(0.6, 1000)


def test_third_and_later_attempts_are_not_counted() -> None:
    b = AttemptBudget(11, 100)
    b.resolved(3, True)
    b.resolved(4, False)
    assert (b.first_answered, b.first_silent, b.second_answered, b.second_silent) == (0, 0, 0, 0)
