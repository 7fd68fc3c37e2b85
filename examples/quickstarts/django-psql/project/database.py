"""The database the environment names, as OpenShift's quickstart templates describe it."""
import os

ENGINES = {
    "sqlite": "django.db.backends.sqlite3",
    "postgresql": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
}


def config(base_dir):
    service = os.getenv("DATABASE_SERVICE_NAME", "")
    engine = ENGINES.get(os.getenv("DATABASE_ENGINE", ""), ENGINES["sqlite"]) if service else ENGINES["sqlite"]
    if engine == ENGINES["sqlite"]:
        return {"ENGINE": engine, "NAME": os.path.join(base_dir, "db.sqlite3")}
    if engine == ENGINES["mysql"]:
        import pymysql

        pymysql.install_as_MySQLdb()
    prefix = service.upper().replace("-", "_")
    return {
        "ENGINE": engine,
        "NAME": os.getenv("DATABASE_NAME"),
        "USER": os.getenv("DATABASE_USER"),
        "PASSWORD": os.getenv("DATABASE_PASSWORD"),
        # Kubernetes' service environment variables; the service's name when the pod started
        # before the service existed.
        "HOST": os.getenv(f"{prefix}_SERVICE_HOST", service),
        "PORT": os.getenv(f"{prefix}_SERVICE_PORT", ""),
    }
