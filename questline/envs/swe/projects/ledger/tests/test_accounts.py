import pytest
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


def funded(amount, overdraft_limit=0):
    account = Account("Main", overdraft_limit)
    deposit(account, amount, 1)
    return account


def test_balance_sums_all_transactions_by_default():
    account = funded(1000)
    withdraw(account, 300, 5)
    assert balance(account) == 700


def test_balance_as_of_includes_that_day():
    account = funded(1000)
    withdraw(account, 300, 5)
    assert balance(account, 5) == 700


def test_post_allows_same_day():
    account = funded(1000)
    assert post(account, 1, -1, "Fee") == Transaction(1, -1, "Fee")


def test_post_rejects_day_before_latest_transaction():
    account = Account("Main")
    post(account, 1, 100, "Cash")
    post(account, 5, 100, "Cash")
    with pytest.raises(ValueError):
        post(account, 4, 100, "Cash")


def test_deposit_of_one_cent_with_default_description():
    assert deposit(Account("Main"), 1, 3) == Transaction(3, 1, "Deposit")


def test_deposit_rejects_zero_amount():
    with pytest.raises(ValueError):
        deposit(Account("Main"), 0, 1)


def test_withdraw_of_one_cent_with_default_description():
    assert withdraw(funded(1000), 1, 2) == Transaction(2, -1, "Withdrawal")


def test_withdraw_rejects_zero_amount():
    with pytest.raises(ValueError):
        withdraw(funded(1000), 0, 2)


def test_can_withdraw_entire_balance_without_overdraft():
    assert can_withdraw(funded(1000), 1000) is True


def test_can_withdraw_false_one_cent_over_balance_with_default_limit():
    account = Account("Main")
    deposit(account, 1000, 1)
    assert can_withdraw(account, 1001) is False


def test_withdraw_beyond_overdraft_limit_raises_and_records_nothing():
    account = funded(1000, overdraft_limit=500)
    with pytest.raises(ValueError):
        withdraw(account, 1501, 2)
    assert balance(account) == 1000


def test_transfer_moves_money_with_descriptions():
    source, target = funded(1000), Account("Savings")
    transfer(source, target, 250, 3)
    assert source.transactions[-1] == Transaction(3, -250, "Transfer to Savings")
    assert target.transactions == [Transaction(3, 250, "Transfer from Main")]


def test_transfer_to_same_account_raises():
    account = funded(100)
    with pytest.raises(ValueError):
        transfer(account, account, 10, 3)
