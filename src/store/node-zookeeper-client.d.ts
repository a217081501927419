/**
 * Minimal types for node-zookeeper-client 1.1.3 (the package ships none):
 * only what src/store/zk-session.ts and src/store/zk/ use. `connectionManager`
 * and `Transaction.ops` are the library's internals; only
 * src/store/zk/library-workarounds.ts touches them, for things the public
 * API cannot do.
 */
declare module 'node-zookeeper-client' {
  import type { Socket } from 'node:net';

  namespace zookeeper {
    /** Errors the library passes to callbacks; `code` is one of the Exception constants. */
    interface Exception extends Error {
      readonly code: number;
      /** The code's name, e.g. 'NO_NODE'. */
      readonly name: string;
      readonly path?: string;
      getCode(): number;
    }

    /** Node metadata. 64-bit fields are 8-byte big-endian Buffers. */
    interface Stat {
      czxid: Buffer;
      mzxid: Buffer;
      ctime: Buffer;
      mtime: Buffer;
      version: number;
      cversion: number;
      aversion: number;
      ephemeralOwner: Buffer;
      dataLength: number;
      numChildren: number;
      pzxid: Buffer;
    }

    interface State {
      readonly name: string;
      readonly code: number;
    }

    interface Event {
      readonly type: number;
      readonly name: string;
      readonly path: string;
    }

    type Callback = (error: Exception | null) => void;
    type Watcher = (event: Event) => void;

    /** One entry per operation: `err` is set (type -1, ERROR) when the transaction failed. */
    interface TransactionResult {
      type: number;
      err?: number;
      path?: string;
      stat?: Stat;
    }

    /** Internal op record; `version` is what goes on the wire. */
    interface TransactionOp {
      type: number;
      path: string;
      version?: number;
    }

    /** A scheme and an identity in it, e.g. ('digest', 'user:base64(sha1(user:password))'). */
    interface Id {
      readonly scheme: string;
      readonly id: string;
    }

    /** Permissions (a bit set of Permission) for one identity. */
    interface ACL {
      readonly permission: number;
      readonly id: Id;
    }

    interface Transaction {
      create(path: string, data: Buffer, acls: ACL[], mode: number): Transaction;
      setData(path: string, data: Buffer, version: number): Transaction;
      remove(path: string, version: number): Transaction;
      check(path: string, version: number): Transaction;
      commit(callback: (error: Exception | null, results?: TransactionResult[]) => void): void;
      /** Internal: the ops as they will be serialized. */
      ops: TransactionOp[];
    }

    /** Internal (lib/ConnectionManager.js). */
    interface ConnectionManager {
      state: number;
      socket: Socket | undefined;
      connectTimeoutHandler: NodeJS.Timeout | null;
      pendingBuffer: Buffer | null;
      connectTimeout: number;
      /** Last zxid seen in a reply (8 bytes, big-endian). */
      zxid: Buffer;
      setState(state: number): void;
      connect(): void;
      findNextServer(callback: (server: { host: string; port: number }) => void): void;
      onSocketConnectTimeout(): void;
      onSocketConnected(): void;
      onSocketData(buffer: Buffer): void;
      onSocketDrain(): void;
      onSocketClosed(hasError: boolean): void;
      onSocketError(error: Error): void;
    }

    interface ClientOptions {
      sessionTimeout?: number;
      spinDelay?: number;
      retries?: number;
      sessionId?: Buffer;
      sessionPassword?: Buffer;
    }

    interface Client {
      connect(): void;
      close(): void;
      on(event: 'connected' | 'disconnected' | 'expired' | 'authenticationFailed' | 'connectedReadOnly', listener: () => void): this;
      on(event: 'state', listener: (state: State) => void): this;
      once(event: 'connected' | 'disconnected' | 'expired', listener: () => void): this;
      removeAllListeners(event?: string): this;
      getState(): State;
      getSessionId(): Buffer;
      getSessionPassword(): Buffer;
      getSessionTimeout(): number;
      addAuthInfo(scheme: string, auth: Buffer): void;
      create(path: string, data: Buffer, acls: ACL[], mode: number, callback: (error: Exception | null, path?: string) => void): void;
      setACL(path: string, acls: ACL[], version: number, callback: (error: Exception | null, stat?: Stat) => void): void;
      getACL(path: string, callback: (error: Exception | null, acls?: ACL[], stat?: Stat) => void): void;
      remove(path: string, version: number, callback: Callback): void;
      setData(path: string, data: Buffer, version: number, callback: (error: Exception | null, stat?: Stat) => void): void;
      getData(
        path: string,
        watcher: Watcher | undefined,
        callback: (error: Exception | null, data?: Buffer | null, stat?: Stat) => void,
      ): void;
      getChildren(
        path: string,
        watcher: Watcher | undefined,
        callback: (error: Exception | null, children?: string[], stat?: Stat) => void,
      ): void;
      exists(path: string, watcher: Watcher | undefined, callback: (error: Exception | null, stat?: Stat | null) => void): void;
      transaction(): Transaction;
      /** Internal. */
      connectionManager: ConnectionManager;
    }
  }

  const zookeeper: {
    createClient(connectionString: string, options?: zookeeper.ClientOptions): zookeeper.Client;
    Exception: {
      readonly OK: 0;
      readonly SYSTEM_ERROR: number;
      readonly RUNTIME_INCONSISTENCY: number;
      readonly CONNECTION_LOSS: number;
      readonly OPERATION_TIMEOUT: number;
      readonly NO_NODE: number;
      readonly BAD_VERSION: number;
      readonly NO_CHILDREN_FOR_EPHEMERALS: number;
      readonly NODE_EXISTS: number;
      readonly NOT_EMPTY: number;
      readonly SESSION_EXPIRED: number;
      readonly AUTH_FAILED: number;
      readonly NO_AUTH: number;
      readonly INVALID_ACL: number;
    };
    ACL: {
      new (permission: number, id: zookeeper.Id): zookeeper.ACL;
      readonly OPEN_ACL_UNSAFE: zookeeper.ACL[];
    };
    Id: new (scheme: string, id: string) => zookeeper.Id;
    Permission: { readonly READ: 1; readonly WRITE: 2; readonly CREATE: 4; readonly DELETE: 8; readonly ADMIN: 16; readonly ALL: 31 };
    CreateMode: {
      readonly PERSISTENT: 0;
      readonly EPHEMERAL: 1;
      readonly PERSISTENT_SEQUENTIAL: 2;
      readonly EPHEMERAL_SEQUENTIAL: 3;
    };
    State: {
      readonly DISCONNECTED: zookeeper.State;
      readonly SYNC_CONNECTED: zookeeper.State;
      readonly EXPIRED: zookeeper.State;
    };
  };
  export = zookeeper;
}
