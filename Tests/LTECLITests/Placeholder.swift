import XCTest

final class LTECLITestsPlaceholder: XCTestCase {}
