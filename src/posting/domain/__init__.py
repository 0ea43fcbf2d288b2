"""Pure ledger domain: money in integer minor units, balanced postings, account rules. No I/O."""
