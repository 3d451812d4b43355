import Foundation

extension LTEError {
    /// `what: <reason>` with the reason the system gave: the POSIX error under a Foundation error
    /// when there is one ("No space left on device"), else the error's own text, else errno's. A
    /// full disk or a missing permission then says so instead of a bare "cannot write".
    public static func posix(_ what: String, fallback error: Error? = nil) -> LTEError {
        LTEError("\(what): \(reason(error))")
    }

    static func reason(_ error: Error?) -> String {
        guard let error else { return String(cString: strerror(errno)) }
        var ns: NSError? = error as NSError
        while let e = ns {
            if e.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(e.code))) }
            // Foundation reports some POSIX failures as its own codes, without the POSIX error under them.
            if e.domain == NSCocoaErrorDomain, let os = cocoaToPOSIX[e.code] { return String(cString: strerror(os)) }
            ns = e.userInfo[NSUnderlyingErrorKey] as? NSError
        }
        return error.localizedDescription
    }

    private static let cocoaToPOSIX: [Int: Int32] = [
        CocoaError.fileWriteOutOfSpace.rawValue: ENOSPC, CocoaError.fileWriteVolumeReadOnly.rawValue: EROFS,
        CocoaError.fileWriteNoPermission.rawValue: EACCES, CocoaError.fileReadNoPermission.rawValue: EACCES,
        CocoaError.fileNoSuchFile.rawValue: ENOENT, CocoaError.fileReadNoSuchFile.rawValue: ENOENT,
    ]
}
