"""The chaos run: the reliability proof of the whole system.

`scripts/chaos.sh` (`python -m chaos.run`) drives tens of thousands of meldingen and
hostile messages from several partners through real service processes while it
kills them, restarts RabbitMQ and PostgreSQL, and then checks that nothing was lost,
nothing happened twice, and the database equals what a pure-Python model of the same
inputs predicts. Not part of the default test run; see docs/reliability.md.
"""
