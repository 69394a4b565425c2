"""JupyterHub configuration for a team sharing one fm_lab store on PostgreSQL.

Every user's server (and so every kernel, terminal and ``fm-lab`` command in it) gets the same
``FM_LAB_STORE``; JupyterHub itself sets ``JUPYTERHUB_USER`` in each server, which fm_lab takes
as the user's identity (trusted-environment identity: see README.md beside this file).

Fill in the database URL (its password from a secret, never from this file) and the roles, then
start JupyterHub with ``jupyterhub -f jupyterhub_config.py``. Only the settings fm_lab needs
are here; authenticator, spawner class, proxy and TLS are the hub's usual ones.
"""

import os

c = get_config()  # noqa: F821  (JupyterHub defines get_config when it reads this file)

# The team store: a database and role made for fm_lab (README.md, step 1). The password comes
# from the hub's environment (a Kubernetes secret, a systemd credential, ...); fm_lab masks it
# in every message and log line.
FM_LAB_STORE = os.environ.get(
    "FM_LAB_STORE", "postgresql://fm_lab@db.internal:5432/fm_lab?sslmode=require")
PGPASSWORD = os.environ.get("FM_LAB_DB_PASSWORD", "")

# Who holds which role, for approvals assigned to a role (`roles: [finance]` on a node).
ROLES = {
    "alice": "finance,admin",
    "bob": "finance",
}

c.Spawner.environment = {
    "FM_LAB_STORE": FM_LAB_STORE,
    # psycopg reads the password from PGPASSWORD, so it never appears in the URL
    "PGPASSWORD": PGPASSWORD,
    # a shared store runs workflows other people saved: the restricted execution policy
    # (no arbitrary code or private-network HTTP unless allowed; see the README's Security
    # model). A PostgreSQL store already defaults to it; set here so it is explicit.
    "FM_LAB_POLICY": "restricted",
    # JUPYTERHUB_USER is set by JupyterHub; FM_LAB_USER is left unset so it cannot differ
    "FM_LAB_ROLES": lambda spawner: ROLES.get(spawner.user.name, ""),
}

# Timers and recovery for the whole team: one service resumes runs whose kernel died and fires
# due waits (sleep_until, approval timeouts), whoever started them.
c.JupyterHub.services = [
    {
        "name": "fm-lab-recover",
        "command": ["fm-lab", "recover", "--watch", "--interval", "5"],
        "environment": {"FM_LAB_STORE": FM_LAB_STORE, "PGPASSWORD": PGPASSWORD,
                        "FM_LAB_USER": "fm-lab-service", "FM_LAB_POLICY": "restricted"},
    },
]
