"""The Jira Cloud sandbox: only the user endpoints of Jira Cloud's REST API v3, which is all a migration
needs from Jira to name the people Zephyr Scale knows by Atlassian account id only.

``directory.py`` is the company's people (the same people the qTest sandbox's template has as users, most
of them); ``app.py`` the server (``GET /rest/api/3/user/bulk``, ``GET /rest/api/3/myself``, Basic
e-mail:API-token auth); ``serve.py`` runs it on a thread. Like every sandbox it imports nothing from
``zephyr_qtest.lib`` or ``zephyr_qtest.defs``.
"""
