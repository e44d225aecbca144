"""The controller's process: tick, tell the supervisor, then sleep until the next tick or a store change."""

from __future__ import annotations

import logging
import threading
import time

from hastack.agent.watch import is_news, sd_notify
from hastack.controller.api import Api
from hastack.controller.service import Controller
from hastack.store import Store, StoreError, keys

log = logging.getLogger("hastack.controller")


def run(controller: Controller, api: Api, store: Store, stop: threading.Event) -> None:
    said, ready = "", False
    prefix = keys.root(controller.settings.deployment)
    while not stop.is_set():
        sentence = controller.tick()
        api.last_tick = time.monotonic()
        sd_notify("WATCHDOG=1")
        if not ready:
            ready = sd_notify("READY=1") or True
        if not controller.last.quiet and is_news(said, sentence):
            log.info(sentence)
            said = sentence
        try:
            # Wake on any change of this deployment's keys: a node key vanishing is acted on at once; and
            # when a network node would become silent to the grants (a few ms after, not a tick later).
            wait_s = min(controller.settings.tick_s, controller.next_silence_s() + 0.005)
            store.wait(prefix, controller.revision, wait_s)
        except StoreError:
            stop.wait(controller.settings.tick_s)
    controller.election.resign()
