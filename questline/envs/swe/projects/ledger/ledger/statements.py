"""Statements over half-open day periods: lines, totals, interest and rendering."""

from ledger.accounts import Account, balance
from ledger.dates import Day, check_period, in_period, split_period, to_day
from ledger.money import format_amount, simple_interest

StatementLine = tuple[int, str, int, int]


def opening_balance(account: Account, start: Day) -> int:
    """Balance at the start of day start (transactions strictly before it)."""
    return balance(account, to_day(start) - 1)


def statement_lines(account: Account, start: Day, end: Day) -> list[StatementLine]:
    """Lines (day, description, amount, running balance) for transactions in [start, end)."""
    first, last = check_period(start, end)
    running = opening_balance(account, first)
    lines = []
    for t in account.transactions:
        if in_period(t.day, first, last):
            running += t.amount
            lines.append((t.day, t.description, t.amount, running))
    return lines


def period_totals(account: Account, start: Day, end: Day) -> dict[str, int]:
    """Credits, debits (as a positive number) and net change within [start, end)."""
    amounts = [amount for _, _, amount, _ in statement_lines(account, start, end)]
    credits = sum(amount for amount in amounts if amount > 0)
    debits = -sum(amount for amount in amounts if amount < 0)
    return {"credits": credits, "debits": debits, "net": credits - debits}


def daily_balances(account: Account, start: Day, end: Day) -> list[int]:
    """End-of-day balance for every day in [start, end)."""
    first, last = check_period(start, end)
    return [balance(account, day) for day in range(first, last)]


def accrued_interest(
    account: Account, start: Day, end: Day, rate_bp: int = 200, overdraft_rate_bp: int = 1500
) -> int:
    """Interest over [start, end) from end-of-day balances.

    Credit balances earn rate_bp; overdrawn ones are charged overdraft_rate_bp (a negative
    result). Balance-days are summed before rounding.
    """
    positive = negative = 0
    for amount in daily_balances(account, start, end):
        if amount > 0:
            positive += amount
        elif amount < 0:
            negative += amount
    return simple_interest(positive, rate_bp) + simple_interest(negative, overdraft_rate_bp)


def monthly_interest(account: Account, start: Day, end: Day, rate_bp: int = 200) -> list[int]:
    """Credit interest per consecutive 30-day period of [start, end)."""
    return [accrued_interest(account, a, b, rate_bp) for a, b in split_period(start, end)]


def render_statement(account: Account, start: Day, end: Day) -> list[str]:
    """Text statement: header, opening balance, one row per transaction, closing balance."""
    opening = opening_balance(account, start)
    lines = [f"Statement for {account.name}", f"Opening balance: {format_amount(opening)}"]
    for day, text, amount, running in statement_lines(account, start, end):
        lines.append(f"{day:>6} {text:<12}{format_amount(amount):>11}{format_amount(running):>11}")
    closing = opening + period_totals(account, start, end)["net"]
    lines.append(f"Closing balance: {format_amount(closing)}")
    return lines
