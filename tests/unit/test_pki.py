"""The deployment's CA and certificates: made once, checked after, never replaced."""

from __future__ import annotations

import ipaddress
import shutil
import stat
from pathlib import Path

import pytest
from cryptography import x509

from hastack import pki
from hastack.cli.errors import run_guarded
from hastack.cli.main import cli
from hastack.pki import Layout, PkiError

HOSTS = [("db1", "10.240.0.11"), ("net1", "10.240.0.31")]


def test_everything_is_made_once_keys_private_and_each_host_named_by_its_address(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "pki")
    made = pki.ensure("d", HOSTS, layout)
    assert sorted(made) == sorted(layout.files(["db1", "net1"]))
    for path in made:
        private = path.name.endswith(("-key.pem", "-bundle.pem"))
        assert stat.S_IMODE(path.stat().st_mode) == (0o600 if private else 0o644), path
    cert = x509.load_pem_x509_certificate(layout.host_cert("net1").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.240.0.31")]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {u.dotted_string for u in usage} == {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"}
    before = {p: p.read_bytes() for p in made}
    assert pki.ensure("d", HOSTS, layout) == []
    assert {p: p.read_bytes() for p in made} == before


def test_a_new_host_is_issued_by_the_ca_already_there(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    pki.ensure("d", HOSTS[:1], layout)
    ca = layout.ca.read_bytes()
    assert sorted(pki.ensure("d", HOSTS, layout)) == sorted(
        [layout.host_cert("net1"), layout.host_key("net1"), layout.host_bundle("net1")]
    )
    assert layout.ca.read_bytes() == ca
    issuer = x509.load_pem_x509_certificate(layout.host_cert("net1").read_bytes()).issuer
    assert issuer == x509.load_pem_x509_certificate(ca).subject


def test_a_certificate_that_does_not_fit_is_refused_not_replaced(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "a")
    pki.ensure("d", HOSTS, layout)
    with pytest.raises(PkiError, match=r"db1.pem does not name 10.240.0.99: remove it and its key"):
        pki.ensure("d", [("db1", "10.240.0.99")], layout)
    other = Layout(tmp_path / "b")
    pki.ensure("other", HOSTS, other)
    shutil.copy(other.host_cert("net1"), layout.host_cert("net1"))
    shutil.copy(other.host_key("net1"), layout.host_key("net1"))
    with pytest.raises(PkiError, match=r"net1.pem was not issued by the CA in"):
        pki.ensure("d", HOSTS, layout)
    layout.host_key("db1").unlink()
    with pytest.raises(PkiError, match=r"db1-key.pem is missing while its pair is there"):
        pki.ensure("d", HOSTS[:1], layout)


def test_without_the_cas_key_nothing_new_can_be_issued(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    pki.ensure("d", HOSTS[:1], layout)
    layout.ca_key.unlink()  # the operator keeps it elsewhere
    assert pki.ensure("d", HOSTS[:1], layout) == []  # what is there is still checked and fine
    with pytest.raises(PkiError, match=r"cannot issue a certificate for net1: the CA's key"):
        pki.ensure("d", HOSTS, layout)


def test_the_command_makes_the_files_and_says_what_it_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pki"
    assert run_guarded(cli, ["pki", "examples/paper.yaml", "-o", str(out)]) == 0
    assert "made 34 files in" in capsys.readouterr().out
    assert run_guarded(cli, ["pki", "examples/paper.yaml", "-o", str(out)]) == 0
    assert "every certificate is in place, nothing made" in capsys.readouterr().out
    (out / "db1.pem").write_text("not a certificate")
    assert run_guarded(cli, ["pki", "examples/paper.yaml", "-o", str(out)]) == 2
    assert capsys.readouterr().err == f"hastack: error: {out}/db1.pem: not a PEM certificate\n"
