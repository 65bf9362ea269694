"""The URLs shared/provisioning.py builds for a login, a virtual host and a database."""

from __future__ import annotations

from shared.provisioning import admin_database_url, login_of, on_vhost, with_database, with_login


def test_a_login_on_a_vhost_is_quoted_on_every_node() -> None:
    url = "amqp://svc:pw@node1:5672/,amqp://svc:pw@node2:5673/"
    assert with_login(url, user="a b", password="p@ss/:", vhost="vi/test") == (
        "amqp://a%20b:p%40ss%2F%3A@node1:5672/vi%2Ftest,"
        "amqp://a%20b:p%40ss%2F%3A@node2:5673/vi%2Ftest"
    )


def test_without_a_vhost_the_url_keeps_its_own_and_gets_the_default_port() -> None:
    assert with_login("amqp://guest:guest@localhost/demo", user="u", password="p") == (
        "amqp://u:p@localhost:5672/demo"
    )
    assert with_login("amqps://localhost/?auth=plain", user="u", password="p") == (
        "amqps://u:p@localhost:5671/?auth=plain"
    )


def test_the_services_login_moves_to_another_vhost() -> None:
    assert login_of("amqp://127.0.0.1:5672/") == ("guest", "guest")
    assert on_vhost("amqp://svc:secret@127.0.0.1:5672/", "vi-x") == (
        "amqp://svc:secret@127.0.0.1:5672/vi-x"
    )


def test_another_database_on_the_same_server() -> None:
    url = "postgresql://postgres@h1:5432,h2:5433/verwijsindex?target_session_attrs=read-write"
    assert with_database(url, "vi_t") == (
        "postgresql://postgres@h1:5432,h2:5433/vi_t?target_session_attrs=read-write"
    )
    assert admin_database_url("postgresql://postgres@127.0.0.1/verwijsindex") == (
        "postgresql://postgres@127.0.0.1/postgres"
    )
