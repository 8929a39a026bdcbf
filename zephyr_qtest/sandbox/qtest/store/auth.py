"""Auth: the site's users, API and OAuth tokens (password and refresh grants, revoke, status)."""

from __future__ import annotations

import time

from zephyr_qtest.sandbox.qtest import auth
from zephyr_qtest.sandbox.qtest.store.base import (
    Json,
    StoreBase,
    bad,
)
from zephyr_qtest.sandbox.qtest.template import (
    USER_ACTIVE,
)


class AuthStore(StoreBase):
    """Auth: the site's users, API and OAuth tokens (password and refresh grants, revoke, status)."""

    def _users(self) -> list[Json]:
        return self._select("SELECT body FROM objects WHERE kind = 'user' ORDER BY id")

    def admin_user(self) -> Json:
        return self._users()[0]

    def user(self, user_id: int) -> Json | None:
        return self._get("user", user_id)

    def render_user(self, user: Json, *, extension: bool = False) -> Json:
        out: Json = {
            "links": [{"rel": "self", "href": f"{self.api_url}/users/{user['id']}"}],
            "id": user["id"],
            "username": user["username"],
            "email": user["email"],
            "first_name": user["first_name"],
            "last_name": user["last_name"],
            "status": user["status"],
        }
        if not extension:
            out["user_group_ids"] = []
        return out

    def users(self, *, include_inactive: bool = True) -> list[Json]:
        return [
            self.render_user(user)
            for user in self._users()
            if include_inactive or user["status"] == USER_ACTIVE
        ]

    def search_users(self, username: str | None, *, include_inactive: bool) -> list[Json]:
        needle = (username or "").lower()
        return [
            self.render_user(user, extension=True)
            for user in self._users()
            if (include_inactive or user["status"] == USER_ACTIVE) and needle in user["username"].lower()
        ]

    def authenticate(self, token: str) -> int | None:
        """The user id a bearer token belongs to, or None (unknown, expired or revoked)."""
        known = self._tokens.get(token)
        if known is None:
            row = self.conn.execute(
                "SELECT user_id, expires_at, revoked FROM tokens WHERE token = ?", (token,)
            ).fetchone()
            if row is None:
                return None
            known = (row[0], row[1], bool(row[2]))
            if len(self._tokens) < 10_000:
                self._tokens[token] = known
        user_id, expires_at, revoked = known
        if revoked or (expires_at is not None and expires_at <= time.time()):
            return None
        return user_id

    def _mint(self, user_id: int, refresh: str | None = None) -> Json:
        access = auth.new_token()
        if refresh is None:
            refresh = auth.new_token()
            self.conn.execute("INSERT INTO refresh_tokens (token, user_id) VALUES (?, ?)", (refresh, user_id))
        expires_at = time.time() + self.token_ttl_s
        self.conn.execute(
            "INSERT INTO tokens (token, kind, user_id, refresh_token, expires_at) VALUES (?, 'oauth', ?, ?, ?)",
            (access, user_id, refresh, expires_at),
        )
        return {
            "access_token": access,
            "token_type": "bearer",
            "refresh_token": refresh,
            "scope": auth.SCOPE,
            "expires_in": self.token_ttl_s,
            "agent": auth.AGENT,
        }

    def login(self, username: str | None, password: str | None) -> Json:
        """The password grant: a new access token, or a 400 ``invalid_grant``-style error."""
        for user in self._users():
            if username is not None and user["username"].lower() == username.lower():
                if user["status"] != USER_ACTIVE:
                    raise bad("User account is inactive")
                if password != user["password"]:
                    break
                with self.tx():
                    return self._mint(user["id"])
        raise bad("Bad credentials")

    def refresh(self, refresh_token: str | None) -> Json:
        """The refresh grant: a new access token for the same refresh token (which stays valid, as with
        Spring OAuth2's defaults); the access token it replaces stops working."""
        row = self.conn.execute(
            "SELECT user_id, revoked FROM refresh_tokens WHERE token = ?", (refresh_token or "",)
        ).fetchone()
        if row is None or row[1]:
            raise bad(f"Invalid refresh token: {(refresh_token or '')[:8]}...")
        with self.tx():
            self.conn.execute("UPDATE tokens SET revoked = 1 WHERE refresh_token = ?", (refresh_token,))
            self._tokens.clear()
            return self._mint(row[0], refresh_token)

    def revoke(self, token: str) -> None:
        """Log out: the access token and its refresh token stop working (the API token too, if named)."""
        with self.tx():
            row = self.conn.execute("SELECT refresh_token FROM tokens WHERE token = ?", (token,)).fetchone()
            self.conn.execute("UPDATE tokens SET revoked = 1 WHERE token = ?", (token,))
            if row is not None and row[0]:
                self.conn.execute("UPDATE refresh_tokens SET revoked = 1 WHERE token = ?", (row[0],))
        self._tokens.pop(token, None)

    def token_status(self, token: str) -> Json | None:
        row = self.conn.execute("SELECT expires_at, revoked FROM tokens WHERE token = ?", (token,)).fetchone()
        if row is None or row[1]:
            return None
        if row[0] is None:
            return {"expiration": 0, "validityInMilliseconds": 0}  # "0 means it never expires"
        remaining = row[0] - time.time()
        if remaining <= 0:
            return None
        return {"expiration": int(row[0] * 1000), "validityInMilliseconds": int(remaining * 1000)}
