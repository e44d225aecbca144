"""Which failures the lab's Neutron workload runs again after: a gateway's answer, from either library."""

from __future__ import annotations

import requests
from keystoneauth1 import exceptions as ksa_exceptions
from openstack import exceptions as sdk_exceptions

from hastack.lab.openstack.resources import gateway_status


def _sdk_error(status: int) -> sdk_exceptions.HttpException:
    response = requests.Response()
    response.status_code = status
    return sdk_exceptions.HttpException("answer", response=response)


def test_a_gateway_timeout_fetching_the_token_counts_as_a_gateway_answer() -> None:
    # keystoneauth raises its own exception for the token it fetches before the SDK's first request:
    # in CI this one ended the lab's bring-up ("Gateway Timeout (HTTP 504)").
    assert gateway_status(ksa_exceptions.GatewayTimeout()) == 504
    assert gateway_status(ksa_exceptions.ServiceUnavailable()) == 503


def test_a_gateway_answer_from_the_sdk_counts() -> None:
    assert gateway_status(_sdk_error(502)) == 502


def test_other_failures_are_not_run_again() -> None:
    assert gateway_status(_sdk_error(409)) is None
    assert gateway_status(ksa_exceptions.Unauthorized()) is None
    assert gateway_status(ValueError("no status")) is None
