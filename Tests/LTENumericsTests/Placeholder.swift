import XCTest

final class LTENumericsTestsPlaceholder: XCTestCase {}
