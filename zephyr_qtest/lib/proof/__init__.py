"""The proof: Zephyr as extracted (the raw layer) against qTest as read back, value by value.

- ``fates``: every Zephyr field's declared fate (carried to which qTest field by which rule, or not
  carried and why), the one registry the ledger, the data dictionary and the README's mapping table read;
- ``ledger``: the comparison and its result, the ledger of what did not arrive;
- ``acceptance``: the user's reviewed acceptance file and the verdict it gives;
- ``report``: the report people sign off (Markdown, HTML with its charts, the full ledger as CSV).
"""
