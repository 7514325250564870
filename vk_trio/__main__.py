"""Entry point of ``python -m vk_trio`` and of the .pyz."""

from vk_trio.cli import main

raise SystemExit(main())
