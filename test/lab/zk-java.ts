/**
 * The command line of a lab ZooKeeper server (the Debian package's jars, in
 * the foreground, as multi-host-lab.md describes). The package ships no SLF4J
 * binding, so the server would log nothing; with slf4j-simple (libslf4j-java,
 * a dependency of the package) on the class path it logs INFO lines with
 * times to stderr, which the lab keeps as zookeeper.log: session expiries and
 * refused connections are what a failed store test needs to be understood.
 */
import { existsSync } from 'node:fs';

const BASE = '/etc/zookeeper/conf:/usr/share/java/zookeeper.jar';
const SIMPLE_LOGGER = '/usr/share/java/slf4j-simple.jar';

/** The Debian packages' jars with the logger (the docker-in-docker image has them all). */
export const ZK_PACKAGE_CLASSPATH = `${BASE}:${SIMPLE_LOGGER}`;

/** `$TSL_ZK_CLASSPATH`, else the package's jars (plus slf4j-simple if installed). */
export const zkClasspath = (): string =>
  process.env['TSL_ZK_CLASSPATH'] ?? (existsSync(SIMPLE_LOGGER) ? ZK_PACKAGE_CLASSPATH : BASE);

/**
 * The jars a TLS port needs beyond those the package's zookeeper.jar names in
 * its manifest: NettyServerCnxnFactory's SslHandler needs netty-codec and
 * netty-resolver (libnetty-java, a dependency of the package).
 */
const NETTY_EXTRA = ['/usr/share/java/netty-codec.jar', '/usr/share/java/netty-resolver.jar'];

/** zkClasspath() plus the Netty jars of a TLS port; throws if they are not installed. */
export const zkTlsClasspath = (): string => {
  const missing = NETTY_EXTRA.filter((j) => !existsSync(j));
  if (missing.length > 0) throw new Error(`a ZooKeeper TLS port needs Netty: ${missing.join(', ')} missing (libnetty-java)`);
  return [zkClasspath(), ...NETTY_EXTRA].join(':');
};

/** `java` arguments that run one server with the config file `cfg`, logging into `logDir`. */
export const zkJavaArgs = (cfg: string, logDir: string, classpath = zkClasspath()): string[] => [
  `-Dzookeeper.log.dir=${logDir}`,
  '-Xmx256m',
  '-Dorg.slf4j.simpleLogger.showDateTime=true',
  '-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS',
  '-cp',
  classpath,
  'org.apache.zookeeper.server.quorum.QuorumPeerMain',
  cfg,
];
