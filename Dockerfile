# amebo's server image: `docker compose up` builds it (see docker-compose.yml).
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY amebo ./amebo
COPY sql ./sql
RUN pip install --no-cache-dir . && useradd --system amebo
USER amebo
EXPOSE 8701
ENTRYPOINT ["amebo"]
CMD ["serve", "--address", "0.0.0.0:8701"]
