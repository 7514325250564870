"""An in-process, verified fake GPU marketplace (see ``_provider.py`` for why it exists).

The package is split along its seams: ``_workload`` is the pure lifecycle of one instance and its
annotations, ``_store`` the books (in memory or in a crash-safe shared file), ``_catalog`` the
machines for rent, ``_ledger`` what was billed, ``_logs`` what a container printed, ``_faults``
the scripted trouble, and ``_provider`` the ``FakeProvider`` that puts them behind the contract.
"""

from vk_trio.providers.fake._catalog import DEFAULT_CATALOG as DEFAULT_CATALOG
from vk_trio.providers.fake._catalog import CatalogEntry as CatalogEntry
from vk_trio.providers.fake._faults import METHODS as METHODS
from vk_trio.providers.fake._faults import Method as Method
from vk_trio.providers.fake._ledger import LedgerEntry as LedgerEntry
from vk_trio.providers.fake._logs import FOLLOW_POLL_SECONDS as FOLLOW_POLL_SECONDS
from vk_trio.providers.fake._provider import DEFAULT_EPOCH as DEFAULT_EPOCH
from vk_trio.providers.fake._provider import DEFAULT_WORKLOAD as DEFAULT_WORKLOAD
from vk_trio.providers.fake._provider import FakeProvider as FakeProvider
from vk_trio.providers.fake._provider import trio_clock as trio_clock
from vk_trio.providers.fake._workload import ANNOTATION_PREFIX as ANNOTATION_PREFIX
from vk_trio.providers.fake._workload import BOOT_SECONDS as BOOT_SECONDS
from vk_trio.providers.fake._workload import EXIT_CODE as EXIT_CODE
from vk_trio.providers.fake._workload import FAIL as FAIL
from vk_trio.providers.fake._workload import FAIL_CREATE_500 as FAIL_CREATE_500
from vk_trio.providers.fake._workload import FAIL_CREATE_500_CREATED as FAIL_CREATE_500_CREATED
from vk_trio.providers.fake._workload import FAIL_IMAGE_ERROR as FAIL_IMAGE_ERROR
from vk_trio.providers.fake._workload import FAIL_MODES as FAIL_MODES
from vk_trio.providers.fake._workload import FAIL_NO_CAPACITY as FAIL_NO_CAPACITY
from vk_trio.providers.fake._workload import LOGS as LOGS
from vk_trio.providers.fake._workload import RUN_SECONDS as RUN_SECONDS
from vk_trio.providers.fake._workload import START_SECONDS as START_SECONDS
from vk_trio.providers.fake._workload import Workload as Workload
