"""The vocabulary of the generated data: URLs, the timeline, and the names, texts and files drawn from.

Real-world text on purpose: unicode, HTML, look-alike characters and awkward file names.
"""

# ruff: noqa: RUF001 (the look-alike characters are the point: the data must carry real-world text)
from __future__ import annotations

from datetime import UTC, datetime

API = "https://api.zephyrscale.smartbear.com/v2"
JIRA = "https://acme-qa.atlassian.net"

PROJECT_KEYS = ("SHOP", "PAY", "CRM", "OPS", "MOB", "DATA", "WEB", "API_GW", "HR2", "QA")
BASE_TIME = datetime(2023, 1, 2, 8, 0, 0, tzinfo=UTC)
TIMELINE_DAYS = 700

CASE_SUBJECTS = (
    "login form", "password reset", "checkout with a saved card", "guest checkout", "cart totals",
    "discount codes", "invoice PDF export", "order history", "profile photo upload",
    "two-factor authentication", "session timeout", "search suggestions", "product filters",
    "wishlist sync", "refund flow", "currency conversion", "address autocomplete", "shipping rates",
    "newsletter opt-out", "GDPR data export", "audit log", "role permissions", "bulk CSV import",
    "API token rotation", "dark mode", "screen reader labels", "push notifications", "offline mode",
    "payment retries", "webhook delivery",
)  # fmt: skip
CASE_VERBS = ("Verify", "Check", "Validate", "Ensure", "Confirm", "Regression:", "Smoke:", "Edge case:")
ODD_CASE_NAMES = (
    "Überprüfen der Anmeldung mit SSO",
    "Vérifier l'export « factures » en PDF",
    "登录失败时显示错误信息",
    "Проверка восстановления пароля",
    "ログイン画面の表示確認",
    "Ödeme sayfası – kupon kodu",
    "🚀 Smoke: homepage loads under 2 s",
    'Check <b>bold</b> & "quoted" names render',
    "Emoji in search 🔍 returns results",
    "Tab\tseparated and trailing spaces   ",
)
# A picture pasted into Zephyr's rich-text editor: kept on SmartBear's CDN, which the API token cannot read
# (REAL_SHAPES Zephyr 5; the address's shape as public exports of real tenants show it).
INLINE_IMAGE = (
    '<img src="https://cloudfront.tm4j.smartbear.com/tenant/5d0e2f6c-1b7a-3c44-9e1d-2a7f0c9b4e11/project/'
    '10302/embedded-3f9a1c07d2b84e6a91c5e0f7b2d4a8c6-1566319668503-screenshot.png">'
)
# Another picture, with the quotes the other way round.
INLINE_IMAGE_2 = (
    "<img alt='result' src='https://cloudfront.tm4j.smartbear.com/tenant/5d0e2f6c-1b7a-3c44-9e1d-2a7f0c9b4e11/"
    "project/10302/embedded-7c1e0b9a44d2f8e3a5b6c7d8e9f00112-1566320001234-result.png'>"
)
# A picture whose bytes are in the text: Zephyr's editor embeds some as data: URIs (lsst-dm/docsteady,
# src/docsteady/utils.py, decodes them); no token is needed to carry them.
DATA_IMAGE = (
    '<img width="12" src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGM4IScHAAK2'
    'AQU0pnWqAAAAAElFTkSuQmCC">'
)
OBJECTIVES = (
    "<p>Ensure that the {subject} works for a signed-in user.</p>",
    "To ensure the {subject} behaves after the upgrade.<br>Covers REQ-{n}.",
    "Vérifier que « {subject} » fonctionne.",
    "Make sure {subject} handles <i>empty</i> input &amp; errors",
)
PRECONDITIONS = (
    "User is logged in<br>Feature flag <code>new-ui</code> is on",
    "Test data set #3 is loaded<br>" + INLINE_IMAGE_2 + " and " + DATA_IMAGE,
    "Der Benutzer ist angemeldet.",
    "<ul><li>Admin account</li><li>Clean browser profile</li></ul>",
)
STEP_ACTIONS = (
    "Open the <b>{screen}</b> page",
    "Enter {field} = <code>{value}</code>",
    "Click <i>Submit</i>",
    "Observe the toast message " + INLINE_IMAGE,
    "Log out and log back in",
    "Switch the language to Deutsch",
    "Rotate the device to landscape",
    "Wait 30 s for the background job to finish",
    "Open the e-mail «Willkommen»",
    "Type the user name {username} and the password {password}",
)
STEP_SCREENS = ("Checkout", "Login", "Profile", "Admin › Users", "Bestellübersicht", "設定")
STEP_FIELDS = ("quantity", "coupon", "e-mail", "IBAN", "Postleitzahl")
STEP_VALUES = ("3", "SUMMER-25", "qa+1@example.com", "DE89 3704 0044 0532 0130 00", "10115")
EXPECTED = (
    "The page loads without errors",
    "A confirmation appears:<br>“Saved”",
    "Totals are recalculated (incl. VAT 19 %)",
    "Error <code>E-401</code> is shown",
    "Nothing happens",
    "Das Formular wird gespeichert",
    "页面显示成功",
)
TEST_DATA = (
    "username = {username}<br>password = {password}",
    "card = 4111 1111 1111 1111; cvv = 123",
    "locale=de_DE",
    "amount = 19.99 €",
)
ACTUAL_OK = ("As expected", "Works", "OK – see screenshot<br>" + INLINE_IMAGE)
ACTUAL_BAD = (
    "Got HTTP 500 instead of 200<br>See the attached log",
    "Button stays disabled",
    "Total off by 0.01 €",
)
LABELS = (
    "Regression",
    "Smoke",
    "Performance",
    "Automated",
    "Security",
    "UI",
    "API",
    "Mobile",
    "flaky",
    "needs-review",
    "Ünïcode",
)
COMMENTS = (
    "Test failed: user could not log in",
    "Passed on second attempt<br>(network hiccup)<br>" + INLINE_IMAGE_2,
    "Bloqué par l'environnement de recette",
    'See <a href="https://acme-qa.atlassian.net/browse/SHOP-12">SHOP-12</a>',
    "环境不稳定",
)
CYCLE_NAMES = (
    "Sprint {k} regression",
    "Release 2.{k} – smoke",
    "Hotfix 2.{k}.1",
    "Nightly run #{k}",
    "Zyklus {k} (DE)",
    "回归测试 {k}",
)
PLAN_NAMES = (
    "Release 2.{k} test plan",
    "Q{q} {year} regression plan",
    "Plan de test – lot {k}",
    "Security review {k}",
)
CASE_FOLDER_ROOTS = (
    "Checkout",
    "Payments",
    "Accounts & Login",
    "Search",
    "Admin",
    "Mobile App",
    "Überprüfungen",
    "レガシー",
)
CASE_FOLDER_CHILDREN = (
    "Happy path",
    "Edge cases",
    "Regression",
    "v2 API",
    "Legacy (pre-2022)",
    "Smoke",
    "Négatif",
    "Sprint {k}",
)
CYCLE_FOLDER_ROOTS = ("Releases", "Sprints", "Hotfixes")
CYCLE_FOLDER_CHILDREN = ("2023", "2024", "Q{q}", "Wave {k}", "Archive")
PLAN_FOLDER_ROOTS = ("Plans", "Audits")
PLAN_FOLDER_CHILDREN = ("2023", "2024", "Compliance", "Q{q}")

# (name, contentType, content kind) of generated attachments.
ATTACHMENT_FILES = (
    ("screenshot.png", "image/png", "png"),
    ("Screenshot 2024-03-01 at 10.15.22.png", "image/png", "png"),
    ("console log (1).txt", "text/plain", "text"),
    ("résumé – test évidence.pdf", "application/pdf", "pdf"),
    ("测试报告.html", "text/html", "html"),
    ("empty.bin", "application/octet-stream", "empty"),
    ("data set [v2].csv", "text/csv", "csv"),
    ("trace.har", "application/json", "json"),
    ("archive (old).zip", "application/zip", "binary"),
    ("Ümlaut ößä.txt", "text/plain", "text"),
    ("no-extension", "application/octet-stream", "binary"),
)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# Values of a data-driven case's test data rows, by parameter.
DATA_ROW_VALUES = {
    "username": ("alice", "bob", "jörg.müller", "李雷", "o'brien"),
    "password": ("s3cret!", "<none>", "pässwörd", "12345678"),
}
