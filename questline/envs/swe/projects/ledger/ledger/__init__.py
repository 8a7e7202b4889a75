"""ledger: accounts, transfers with overdraft rules, interest and statements."""

from ledger.accounts import (
    Account,
    Transaction,
    balance,
    can_withdraw,
    deposit,
    post,
    transfer,
    withdraw,
)
from ledger.dates import check_period, in_period, split_period, to_day
from ledger.money import divide_rounded, format_amount, parse_amount, simple_interest
from ledger.statements import (
    accrued_interest,
    daily_balances,
    monthly_interest,
    opening_balance,
    period_totals,
    render_statement,
    statement_lines,
)

__all__ = [
    "Account",
    "Transaction",
    "accrued_interest",
    "balance",
    "can_withdraw",
    "check_period",
    "daily_balances",
    "deposit",
    "divide_rounded",
    "format_amount",
    "in_period",
    "monthly_interest",
    "opening_balance",
    "parse_amount",
    "period_totals",
    "post",
    "render_statement",
    "simple_interest",
    "split_period",
    "statement_lines",
    "to_day",
    "transfer",
    "withdraw",
]
