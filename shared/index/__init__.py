"""The index: meldingen, youths, matches and their rules, in layers.

Rules, free of I/O (they take values and return decisions):
    domain.py        who matches whom, who leads, what follows when meldingen end
    assignment.py    may a coordinator give the lead to a partner (regie.assign)
    family.py        which meldingen form a family match
    deadlines.py     the terms, on Amsterdam calendar dates
    participants.py  a melding with its organisation, and how others see it
    decisions.py     what must be told: who is told, what ended, who leads

Storage, the only modules with SQL (on the caller's connection and transaction):
    repository.py    meldingen, youths, match groups
    family_store.py  family facts, lookups, family matches

Operations, the steps several services share (they run in the caller's transaction,
through the storage modules, note audit entries in the caller's journal and return
decisions; no SQL, no AMQP, no outbox):
    lifecycle.py     how a melding ends, and what follows for its group and lead
    retirement.py    a partner that leaves the region
    subject.py       the rights of the youth and parents (access, erasure)

Decisions become notices, e-mails and outgoing messages in one place outside the
index, `shared.announce`; audit entries and statistics facts are written by
`shared.db.journal.Journal`, once per transaction.
"""
