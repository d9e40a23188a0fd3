"""The HTTP layer: routes of the native API (`routes/`) and of the dialects (`dialects/`),
the caller of each request (`deps`), and service errors as answers (`errors`). Routes
translate shapes and call the services; every rule is the services' (api/services)."""
