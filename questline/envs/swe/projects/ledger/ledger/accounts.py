"""Accounts with chronological transactions, overdraft limits and transfers."""

from dataclasses import dataclass, field

from ledger.dates import Day, to_day


@dataclass(frozen=True)
class Transaction:
    """One posting: positive amounts are credits, negative ones debits."""

    day: int
    amount: int
    description: str


@dataclass
class Account:
    """A named account; overdraft_limit is how far (in cents) it may go below zero."""

    name: str
    overdraft_limit: int = 0
    transactions: list[Transaction] = field(default_factory=list)


def balance(account: Account, as_of: Day | None = None) -> int:
    """Balance including every transaction on or before as_of (all when None)."""
    if as_of is None:
        return sum(t.amount for t in account.transactions)
    last = to_day(as_of)
    return sum(t.amount for t in account.transactions if t.day <= last)


def post(account: Account, day: Day, amount: int, description: str) -> Transaction:
    """Append a transaction; days must never go backwards."""
    when = to_day(day)
    if account.transactions and when < account.transactions[-1].day:
        raise ValueError("transactions must be posted in date order")
    transaction = Transaction(when, amount, description)
    account.transactions.append(transaction)
    return transaction


def deposit(account: Account, amount: int, day: Day, description: str = "Deposit") -> Transaction:
    """Credit a positive amount."""
    if amount <= 0:
        raise ValueError("deposit must be positive")
    return post(account, day, amount, description)


def can_withdraw(account: Account, amount: int) -> bool:
    """A withdrawal may not take the balance below minus the overdraft limit."""
    return balance(account) - amount >= -account.overdraft_limit


def withdraw(
    account: Account, amount: int, day: Day, description: str = "Withdrawal"
) -> Transaction:
    """Debit a positive amount within the overdraft limit."""
    if amount <= 0:
        raise ValueError("withdrawal must be positive")
    if not can_withdraw(account, amount):
        raise ValueError(f"overdraft limit exceeded on {account.name}")
    return post(account, day, -amount, description)


def transfer(source: Account, target: Account, amount: int, day: Day) -> None:
    """Move amount from source to target on day, subject to the source's limit."""
    if source is target:
        raise ValueError("cannot transfer to the same account")
    withdraw(source, amount, day, f"Transfer to {target.name}")
    deposit(target, amount, day, f"Transfer from {source.name}")
