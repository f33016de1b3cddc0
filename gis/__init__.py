"""GridMap's spatial core: grid store, import/export, CRS handling and the demo partition.

Never imports Flask: the CLI, the web app and the tests all call these modules directly.
"""
