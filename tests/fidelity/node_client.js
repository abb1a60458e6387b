// Run by tests/fidelity/test_nodejs_driver.py with NODE_PATH naming a node_modules that holds
// the DataStax Node.js driver (npm "cassandra-driver"): the same checks as scylla_client.py,
// one JSON line per check; node stops/starts are asked for on stdout, answered on stdin.
'use strict';
const cassandra = require('cassandra-driver');
const dns = require('dns');
const readline = require('readline');

const config = JSON.parse(process.argv[2]);
// the driver resolves the Astra SNI proxy's name by DNS query (dns.resolve4): point Node's
// resolver at the test's loopback DNS server (tests/fidelity/_dns.py), which answers for it
if (config.dns_server) { dns.setServers([config.dns_server]); }
const KS = 'fid_node';
const lines = readline.createInterface({ input: process.stdin });
const waiting = [];
lines.on('line', (line) => { const w = waiting.shift(); if (w) { w(line); } });

function emit(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }
function ask(what, node) {
  return new Promise((resolve) => { waiting.push(resolve); emit({ ask: what, node: node }); });
}
function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
async function waitFor(pred, seconds) {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) { if (pred()) { return true; } await sleep(100); }
  return pred();
}
function assert(cond, what) { if (!cond) { throw new Error('assertion failed: ' + what); } }

async function check(name, fn) {
  try { await fn(); emit({ check: name, ok: true }); } catch (e) {
    emit({ check: name, ok: false, error: String(e && e.message), trace: String(e && e.stack) });
  }
}

async function main() {
  const options = { socketOptions: { connectTimeout: 10000 } };
  if (config.username) {
    options.credentials = { username: config.username, password: config.password };
  }
  if (config.mode === 'astra') {
    options.cloud = { secureConnectBundle: config.bundle };
  } else {
    options.contactPoints = config.contact_points;
    options.protocolOptions = { port: config.port };
    options.localDataCenter = 'datacenter1';
  }
  const client = new cassandra.Client(options);
  try { await client.connect(); } catch (e) {
    emit({ check: 'connect', ok: false, error: String(e && e.message) }); lines.close(); return;
  }
  emit({ check: 'connect', ok: true });
  const q = (text, params, opts) => client.execute(text, params || [], opts || { prepare: false });
  try {
    if (config.mode === 'astra') {
      await check('astra', async () => {
        let refused = false;
        try {
          await q("CREATE KEYSPACE other WITH replication = {'class': 'SimpleStrategy', " +
                  "'replication_factor': 1}");
        } catch (e) { refused = e.code === cassandra.types.responseErrorCodes.unauthorized; }
        assert(refused, 'CREATE KEYSPACE refused with Unauthorized');
      });
    }
    await check('discovery', async () => {
      assert(client.hosts.length === config.nodes, 'hosts ' + client.hosts.length);
      const rs = await q('SELECT release_version FROM system.local');
      assert(rs.first().release_version, 'release_version');
    });
    if (config.release) {
      // a cluster of that release: every host reports it, the negotiated protocol suits it
      // (3.11: v4 at most) and the table metadata of that release's system_schema reads back
      await check('release', async () => {
        const versions = client.hosts.values().map((h) => h.cassandraVersion);
        assert(versions.length === config.nodes &&
               versions.every((v) => v === config.release), 'versions ' + versions);
        const pv = client.controlConnection.protocolVersion;
        assert(!config.release.startsWith('3.') || pv <= 4, 'protocol ' + pv);
        await q("CREATE KEYSPACE IF NOT EXISTS fid_rel WITH replication = " +
                "{'class': 'SimpleStrategy', 'replication_factor': 1}");
        await q('CREATE TABLE IF NOT EXISTS fid_rel.t (k int PRIMARY KEY, v text)');
        const table = await client.metadata.getTable('fid_rel', 't');
        assert(table && table.columns.map((c) => c.name).join() === 'k,v', 'table metadata');
      });
      return;
    }
    await check('ddl', async () => {
      if (config.mode !== 'astra') {
        await q('CREATE KEYSPACE IF NOT EXISTS ' + KS + " WITH replication = " +
                "{'class': 'SimpleStrategy', 'replication_factor': 1}");
      }
      await q('CREATE TABLE IF NOT EXISTS ' + KS + '.kv (k int, c int, v text, PRIMARY KEY (k, c))');
      await q('CREATE TABLE IF NOT EXISTS ' + KS + '.types (k int PRIMARY KEY, bi bigint, ' +
              'b blob, bo boolean, de decimal, db double, t text, ts timestamp, u uuid, ' +
              'vi varint, l list<int>, m map<text, int>, du duration, d date, i inet)');
    });
    await check('prepared', async () => {
      for (let c = 0; c < 25; c++) {
        await client.execute('INSERT INTO ' + KS + '.kv (k, c, v) VALUES (?, ?, ?)',
                             [1, c, 'v' + c], { prepare: true });
      }
      const rs = await client.execute('SELECT v FROM ' + KS + '.kv WHERE k = ? AND c = ?',
                                      [1, 7], { prepare: true });
      assert(rs.first().v === 'v7', 'v7');
    });
    await check('paging', async () => {
      const rs = await client.execute('SELECT c FROM ' + KS + '.kv WHERE k = ?', [1],
                                      { prepare: true, fetchSize: 4 });
      assert(rs.pageState, 'a page state after the first page');
      let page = rs; const all = page.rows.map((r) => r.c);
      while (page.pageState) {
        page = await client.execute('SELECT c FROM ' + KS + '.kv WHERE k = ?', [1],
                                    { prepare: true, fetchSize: 4, pageState: page.pageState });
        page.rows.forEach((r) => all.push(r.c));
      }
      assert(all.length === 25 && all[24] === 24, 'rows ' + all);
    });
    await check('batch', async () => {
      const queries = [];
      for (let c = 0; c < 5; c++) {
        queries.push({ query: 'INSERT INTO ' + KS + '.kv (k, c, v) VALUES (?, ?, ?)',
                       params: [2, c, 'b' + c] });
      }
      await client.batch(queries, { prepare: true });
      const rs = await q('SELECT c FROM ' + KS + '.kv WHERE k = 2');
      assert(rs.rows.length === 5, 'batch rows ' + rs.rows.length);
    });
    await check('lwt', async () => {
      const text = 'INSERT INTO ' + KS + ".kv (k, c, v) VALUES (3, 0, 'first') IF NOT EXISTS";
      assert((await q(text)).wasApplied(), 'first applied');
      const second = await q(text);
      assert(!second.wasApplied() && second.first().v === 'first', 'second not applied');
    });
    await check('every_type', async () => {
      const T = cassandra.types;
      const values = [1, T.Long.fromString('1099511627776'), Buffer.from([0, 1]), true,
        T.BigDecimal.fromString('3.14159265358979323846'), 2.5, 'text \u00e9',
        new Date(Date.UTC(2021, 2, 4, 5, 6, 7, 123)),
        T.Uuid.fromString('12345678-1234-5678-1234-567812345678'),
        T.Integer.fromString('1000000000000000000000000000000'), [3, 1, 2], { a: 1, b: 2 },
        new T.Duration(1, 2, T.Long.fromNumber(3000)), new T.LocalDate(2020, 2, 3),
        T.InetAddress.fromString('10.0.0.1')];
      await client.execute('INSERT INTO ' + KS + '.types (k, bi, b, bo, de, db, t, ts, u, vi, ' +
                           'l, m, du, d, i) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                           values, { prepare: true });
      const row = (await client.execute('SELECT * FROM ' + KS + '.types WHERE k = 1', [],
                                        { prepare: true })).first();
      assert(row.bi.toString() === '1099511627776', 'bigint ' + row.bi);
      assert(row.b.equals(Buffer.from([0, 1])), 'blob');
      assert(row.bo === true && row.db === 2.5 && row.t === 'text \u00e9', 'scalars');
      assert(row.de.toString() === '3.14159265358979323846', 'decimal ' + row.de);
      assert(row.ts.getTime() === values[7].getTime(), 'timestamp ' + row.ts);
      assert(row.u.toString() === '12345678-1234-5678-1234-567812345678', 'uuid');
      assert(row.vi.toString() === '1000000000000000000000000000000', 'varint ' + row.vi);
      assert(JSON.stringify(row.l) === '[3,1,2]' && row.m.a === 1 && row.m.b === 2, 'colls');
      assert(row.du.toString() === values[12].toString(), 'duration ' + row.du);
      assert(row.d.toString() === '2020-02-03' && row.i.toString() === '10.0.0.1', 'date/inet');
    });
    await check('errors', async () => {
      let code = null;
      try { await q('SELEC * FROM ' + KS + '.kv'); } catch (e) { code = e.code; }
      assert(code === cassandra.types.responseErrorCodes.syntaxError, 'syntax code ' + code);
      code = null;
      try { await q('SELECT * FROM ' + KS + '.nope'); } catch (e) { code = e.code; }
      assert(code === cassandra.types.responseErrorCodes.invalid, 'invalid code ' + code);
    });
    if (config.mode !== 'astra') {
      await check('node_down_up', async () => {
        const node = config.nodes - 1;
        const address = config.contact_points[node];
        const host = client.hosts.values().filter((h) => h.address.startsWith(address + ':'))[0];
        assert(host, 'host ' + address);
        await ask('stop_node', node);
        assert(await waitFor(() => !host.isUp(), 20), 'host still up after stop_node');
        for (let i = 0; i < 5; i++) { await q('SELECT release_version FROM system.local'); }
        await ask('start_node', node);
        assert(await waitFor(() => host.isUp(), 30), 'host not up after start_node');
      });
    }
  } finally {
    await client.shutdown();
    lines.close();
    emit({ done: true });
  }
}

main().catch((e) => { emit({ check: 'main', ok: false, error: String(e && e.stack) }); });
