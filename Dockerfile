# The GridMap web app. docker-compose.yml pairs it with a PostGIS service.
FROM python:3.11-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev
COPY pyproject.toml README.md ./
COPY gis gis
COPY webmap webmap
COPY sql sql
COPY data data
RUN pip install --no-cache-dir -e .
ENV GRIDMAP_STATE_DIR=/var/lib/gridmap GRIDMAP_NODE_MODULES=/app/node_modules
EXPOSE 8000
# Migrate, load the demo once (a no-op when it is active already), then serve.
CMD ["sh", "-c", "python -c 'from gis.settings import Settings, ensure_secret_key; ensure_secret_key(Settings.from_env().state_dir)' && gridmap db migrate && gridmap user init-admin && gridmap demo load && exec gunicorn --bind 0.0.0.0:8000 --workers 2 --threads 4 'webmap:create_app()'"]
