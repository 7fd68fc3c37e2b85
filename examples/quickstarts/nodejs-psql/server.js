// Slipway's Node.js quickstart: an Express application on port 8080 whose front page records a
// view in PostgreSQL and shows the number of views read back from it. The database settings are
// those OpenShift's nodejs-postgresql templates give the application: DATABASE_SERVICE_NAME (the
// host is the service's ${NAME}_SERVICE_HOST variable, else the service name itself),
// POSTGRESQL_USER, POSTGRESQL_PASSWORD and POSTGRESQL_DATABASE. Without DATABASE_SERVICE_NAME
// (the nodejs-example template) the page says that no database is configured.
'use strict';

const express = require('express');
const { Pool } = require('pg');

const port = Number(process.env.PORT || 8080);
const app = express();

// The database the templates describe, or null.
function databaseConfig(env) {
  const service = env.DATABASE_SERVICE_NAME;
  if (!service) return null;
  const prefix = service.toUpperCase().replace(/-/g, '_');
  return {
    service,
    host: env[`${prefix}_SERVICE_HOST`] || service,
    port: Number(env[`${prefix}_SERVICE_PORT`] || 5432),
    user: env.POSTGRESQL_USER,
    password: env.POSTGRESQL_PASSWORD,
    database: env.POSTGRESQL_DATABASE,
  };
}

const config = databaseConfig(process.env);
const pool = config
  ? new Pool({
      host: config.host,
      port: config.port,
      user: config.user,
      password: config.password,
      database: config.database,
      max: 4,
      connectionTimeoutMillis: 2000, // the templates' probes wait 3 s
      idleTimeoutMillis: 30000,
    })
  : null;
if (pool) pool.on('error', (err) => console.error('idle database connection failed:', err.message));

let tableReady = false;

// Records one view and returns how many there are, read back from the database.
async function recordView() {
  const client = await pool.connect();
  try {
    if (!tableReady) {
      await client.query(
        'CREATE TABLE IF NOT EXISTS page_views (id serial PRIMARY KEY, viewed_at timestamptz NOT NULL DEFAULT now())'
      );
      tableReady = true;
    }
    await client.query('INSERT INTO page_views DEFAULT VALUES');
    const { rows } = await client.query('SELECT count(*)::int AS n FROM page_views');
    return rows[0].n;
  } finally {
    client.release();
  }
}

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body>
<h1>Welcome to your Node.js application on Slipway</h1>
${body}
<p>Node.js ${escape(process.version)}, NODE_ENV=${escape(process.env.NODE_ENV || '')}</p>
</body>
</html>
`;
}

app.get('/', async (req, res) => {
  if (!pool) {
    res.type('html').send(
      page('Node.js quickstart', '<p>No database is configured (DATABASE_SERVICE_NAME is not set).</p>')
    );
    return;
  }
  try {
    const views = await recordView();
    res.type('html').send(
      page(
        'Node.js quickstart',
        `<p>Page views: ${views}</p>\n<p>Database: ${escape(config.database)} on ${escape(config.host)}:${config.port} (service ${escape(config.service)})</p>`
      )
    );
  } catch (err) {
    console.error('database request failed:', err.message);
    res
      .status(503)
      .type('html')
      .send(page('Node.js quickstart', `<p>The database is not available: ${escape(err.message)}</p>`));
  }
});

app.get('/health', (req, res) => {
  res.type('text').send('OK\n');
});

const server = app.listen(port, '0.0.0.0', () => {
  console.log(
    `listening on 0.0.0.0:${port}; ` +
      (config ? `database ${config.database} at ${config.host}:${config.port}` : 'no database configured')
  );
});

function shutdown() {
  server.close(() => (pool ? pool.end() : Promise.resolve()).then(() => process.exit(0)));
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
