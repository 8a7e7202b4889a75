import pytest
from ledger import Account, deposit, withdraw
from ledger.statements import (
    accrued_interest,
    daily_balances,
    monthly_interest,
    opening_balance,
    period_totals,
    render_statement,
    statement_lines,
)


def sample():
    account = Account("Main", overdraft_limit=5000)
    deposit(account, 10000, 1, "Salary")
    withdraw(account, 2500, 5, "Rent")
    deposit(account, 1000, 10)
    withdraw(account, 12000, 20, "Car")
    return account


def steady(amount, overdraft_limit=0):
    account = Account("Steady", overdraft_limit)
    if amount > 0:
        deposit(account, amount, 0)
    else:
        withdraw(account, -amount, 0)
    return account


def test_opening_balance_excludes_start_day():
    assert opening_balance(sample(), 5) == 10000


def test_statement_lines_include_start_and_exclude_end():
    assert statement_lines(sample(), 5, 20) == [
        (5, "Rent", -2500, 7500),
        (10, "Deposit", 1000, 8500),
    ]


def test_statement_lines_rejects_reversed_period():
    with pytest.raises(ValueError):
        statement_lines(sample(), 10, 5)


def test_period_totals_split_credits_and_debits():
    assert period_totals(sample(), 1, 21) == {"credits": 11000, "debits": 14500, "net": -3500}


def test_daily_balances_are_end_of_day():
    assert daily_balances(sample(), 4, 7) == [10000, 7500, 7500]


def test_accrued_interest_uses_default_credit_rate():
    assert accrued_interest(steady(73000), 0, 50) == 200


def test_accrued_interest_charges_overdraft_rate_on_negative_balance():
    assert accrued_interest(steady(-730000, overdraft_limit=1000000), 0, 10) == -3000


def test_monthly_interest_per_thirty_day_period():
    assert monthly_interest(steady(365000), 0, 65) == [600, 600, 100]


def test_monthly_interest_custom_rate():
    assert monthly_interest(steady(365000), 0, 30, rate_bp=100) == [300]


def test_render_statement_layout():
    assert render_statement(sample(), 5, 11) == [
        "Statement for Main",
        "Opening balance: $100.00",
        "     5 Rent            -$25.00     $75.00",
        "    10 Deposit          $10.00     $85.00",
        "Closing balance: $85.00",
    ]


def test_render_statement_without_transactions_shows_equal_balances():
    assert render_statement(sample(), 21, 25) == [
        "Statement for Main",
        "Opening balance: -$35.00",
        "Closing balance: -$35.00",
    ]
