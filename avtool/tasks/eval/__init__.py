"""`avtool eval`: one module per evaluated subcommand.

vocode, lipread, v2a, separate, talkinghead and voices; the metrics they use are in
:mod:`avtool.metrics`.
"""
