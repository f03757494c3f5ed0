"""Schemathesis hooks for the API fuzz test's cross-tenant run
(services/api/tests/api/fuzz.rs): every request there carries one tenant's
token and another tenant's real ids in its path."""

import schemathesis


@schemathesis.check
class another_tenants_ids_never_succeed:  # noqa: N801 - the name is the check's, as the CLI selects it
    """No request succeeds (2xx); and each operation answered 404 at least
    once, so the run reached the tenant check rather than stopping at the
    body's validation."""

    def __init__(self):
        self.tested = set()
        self.not_found = set()

    def after_response(self, ctx, response, case):
        label = case.operation.label
        self.tested.add(label)
        if response.status_code == 404:
            self.not_found.add(label)
        if 200 <= response.status_code < 300:
            raise AssertionError(
                f"{case.method} {case.formatted_path} answered {response.status_code} "
                "to another tenant's token; it must be refused (404)"
            )

    def after_run(self, ctx):
        never = sorted(self.tested - self.not_found)
        if never:
            raise AssertionError(
                "never answered 404 to another tenant's ids: " + ", ".join(never)
            )
