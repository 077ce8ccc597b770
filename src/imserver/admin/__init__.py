"""REST routes for operators under /admin/v1; every route names the roles it needs."""
