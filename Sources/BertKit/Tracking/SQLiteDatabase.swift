import CSQLite
import Foundation

/// A value stored in or read from SQLite.
public enum SQLValue: Sendable, Equatable, CustomStringConvertible {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    public var description: String {
        switch self {
        case .null: ""
        case .integer(let v): String(v)
        case .real(let v): String(v)
        case .text(let v): v
        }
    }

    public var double: Double? {
        switch self {
        case .integer(let v): Double(v)
        case .real(let v): v
        case .text(let v): Double(v)
        case .null: nil
        }
    }
}

public struct SQLiteError: Error, CustomStringConvertible, LocalizedError {
    public let path: String
    public let message: String
    /// SQLite's result code (SQLITE_BUSY is 5).
    public var code: Int32 = 0
    public var description: String { "\(path): \(message)" }
    public var errorDescription: String? { description }
}

/// One connection to a SQLite database through the system library: statements with bound values, rows
/// as values, and write transactions that wait for other writers (`BEGIN IMMEDIATE` with a busy timeout).
public final class SQLiteDatabase {
    public let path: String
    private var handle: OpaquePointer?
    private let busyTimeoutMilliseconds: Int32

    /// Opens the file, creating it if needed; or, with `readOnly`, opens an existing one for reading only: SQLite
    /// refuses every write on that connection (`PRAGMA query_only`), so its readers cannot change what runs record.
    public init(path: String, readOnly: Bool = false, busyTimeoutMilliseconds: Int32 = 60_000) throws {
        self.path = path
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_FULLMUTEX
        guard sqlite3_open_v2(path, &handle, flags, nil) == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(handle)
            throw SQLiteError(path: path, message: message)
        }
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        if readOnly { try execute("PRAGMA query_only = ON") }
    }

    deinit { sqlite3_close(handle) }

    /// Runs one or more statements that take no values.
    public func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &message)
        guard status == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? "error"
            sqlite3_free(message)
            throw SQLiteError(path: path, message: text, code: status)
        }
    }

    /// Runs `body` again while it fails with SQLITE_BUSY, for up to the busy timeout.
    public func retryingWhileBusy(_ body: () throws -> Void) throws {
        let deadline = Date().addingTimeInterval(Double(busyTimeoutMilliseconds) / 1000)
        while true {
            do {
                return try body()
            } catch let error as SQLiteError where error.code == SQLITE_BUSY && Date() < deadline {
                usleep(10_000)
            }
        }
    }

    /// Runs one statement with `values` bound to its `?` parameters and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ values: [SQLValue] = []) throws -> [[String: SQLValue]] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else { throw error(sql) }
        defer { sqlite3_finalize(statement) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            switch value {
            case .null: sqlite3_bind_null(statement, index)
            case .integer(let v): sqlite3_bind_int64(statement, index, v)
            case .real(let v): sqlite3_bind_double(statement, index, v)
            case .text(let v): sqlite3_bind_text(statement, index, v, -1, transient)
            }
        }
        var rows: [[String: SQLValue]] = []
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { break }
            guard status == SQLITE_ROW else { throw error(sql) }
            var row: [String: SQLValue] = [:]
            for c in 0..<sqlite3_column_count(statement) {
                let name = String(cString: sqlite3_column_name(statement, c))
                switch sqlite3_column_type(statement, c) {
                case SQLITE_INTEGER: row[name] = .integer(sqlite3_column_int64(statement, c))
                case SQLITE_FLOAT: row[name] = .real(sqlite3_column_double(statement, c))
                case SQLITE_TEXT: row[name] = .text(String(cString: sqlite3_column_text(statement, c)))
                default: row[name] = .null
                }
            }
            rows.append(row)
        }
        return rows
    }

    public var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Runs `body` in a write transaction, taking the write lock at the start so that concurrent writers
    /// queue (up to the busy timeout) instead of failing half-way.
    @discardableResult
    public func writeTransaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    private func error(_ sql: String) -> SQLiteError {
        // An I/O error says little by itself ("disk I/O error"); the system's errno says why (a full disk, a
        // file size limit).
        let system = sqlite3_system_errno(handle)
        let why = sqlite3_errcode(handle) & 0xff == SQLITE_IOERR && system != 0 ? " (\(String(cString: strerror(system))))" : ""
        return SQLiteError(path: path, message: String(cString: sqlite3_errmsg(handle)) + why + " in: \(sql.prefix(120))",
                           code: sqlite3_errcode(handle))
    }
}
