"""The Jira Cloud sandbox: only the endpoints of Jira Cloud's REST API v3 a migration uses, to name the
people Zephyr Scale knows by Atlassian account id only, and the issues it knows by issue id only.

``directory.py`` is the company's people (the same people the qTest sandbox's template has as users, most
of them); ``issues.py`` the issues the tenant links to, with keys and summaries; ``app.py`` the server
(``GET /rest/api/3/user/bulk``, ``GET /rest/api/3/myself``, ``POST /rest/api/3/issue/bulkfetch``, Basic
e-mail:API-token auth); ``serve.py`` runs it on a thread. Like every sandbox it imports nothing from
``zephyr_qtest.lib`` or ``zephyr_qtest.defs``.
"""
