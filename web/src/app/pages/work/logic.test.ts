import { describe, expect, it } from 'vitest'
import {
  certificatesFor,
  checkRanges,
  hhmm,
  isIdCardNumber,
  isMobile,
  missingCertificates,
  planDays,
  rangesText,
  shanghaiToday,
  splitList,
  yuanToFen,
} from './logic'

describe('certificates', () => {
  it('lists each certificate the skills need once, as the server does', () => {
    expect(certificatesFor(['home_repair'])).toEqual([])
    expect(certificatesFor(['daily_cleaning', 'nanny'])).toEqual(['health_certificate'])
    expect(certificatesFor(['maternity_nurse', 'infant_carer'])).toEqual(['health_certificate', 'maternity_care', 'infant_care'])
    expect(certificatesFor(['unknown'])).toEqual([])
  })

  it('counts an expired certificate as missing', () => {
    const held = [
      { kind: 'health_certificate', expired: true },
      { kind: 'maternity_care', expired: false },
    ]
    expect(missingCertificates(['maternity_nurse'], held)).toEqual(['health_certificate'])
    expect(missingCertificates(['maternity_nurse'], [...held, { kind: 'health_certificate', expired: false }])).toEqual([])
  })
})

describe('identity numbers', () => {
  it('accepts the right check character, in either case', () => {
    expect(isIdCardNumber('11010519491231002X')).toBe(true)
    expect(isIdCardNumber(' 11010519491231002x ')).toBe(true)
  })

  it('refuses a wrong check character, length or birth date', () => {
    expect(isIdCardNumber('110105194912310021')).toBe(false)
    expect(isIdCardNumber('1101051949123100')).toBe(false)
    expect(isIdCardNumber('110105194913310024')).toBe(false)
    expect(isIdCardNumber('')).toBe(false)
  })
})

describe('yuan to fen', () => {
  it('converts exactly, with at most two decimals', () => {
    expect(yuanToFen('12')).toBe(1200)
    expect(yuanToFen('12.5')).toBe(1250)
    expect(yuanToFen('0.07')).toBe(7)
    expect(yuanToFen('19.99')).toBe(1999)
    expect(yuanToFen('1,000.10')).toBe(100010)
    expect(yuanToFen('¥ 3')).toBe(300)
    expect(yuanToFen('12.')).toBe(1200)
  })

  it('refuses what is not an amount', () => {
    expect(yuanToFen('')).toBeNull()
    expect(yuanToFen('1.234')).toBeNull()
    expect(yuanToFen('-5')).toBeNull()
    expect(yuanToFen('abc')).toBeNull()
    expect(yuanToFen('1e3')).toBeNull()
  })
})

describe('hours', () => {
  it('normalises times of day', () => {
    expect(hhmm('9:00')).toBe('09:00')
    expect(hhmm('09:00:00')).toBe('09:00')
    expect(hhmm('24:00')).toBeNull()
    expect(hhmm('9')).toBeNull()
  })

  it('sorts a day and refuses bad or overlapping ranges', () => {
    expect(checkRanges([{ start: '14:00', end: '18:00' }, { start: '9:00', end: '12:00' }])).toEqual({
      ranges: [
        { start: '09:00', end: '12:00' },
        { start: '14:00', end: '18:00' },
      ],
    })
    expect(checkRanges([{ start: '', end: '12:00' }])).toEqual({ problem: 'format' })
    expect(checkRanges([{ start: '12:00', end: '12:00' }])).toEqual({ problem: 'order' })
    expect(checkRanges([{ start: '09:00', end: '12:00' }, { start: '11:00', end: '13:00' }])).toEqual({ problem: 'overlap' })
    expect(checkRanges([{ start: '09:00', end: '12:00' }, { start: '12:00', end: '13:00' }])).toHaveProperty('ranges')
    expect(checkRanges([])).toEqual({ ranges: [] })
  })

  it('makes seven days of a plan, or of none', () => {
    expect(planDays(null)).toEqual([[], [], [], [], [], [], []])
    const days = planDays([[{ start: '09:00:00', end: '18:00:00' }]])
    expect(days[0]).toEqual([{ start: '09:00', end: '18:00' }])
    expect(days).toHaveLength(7)
    expect(rangesText(days[0]!)).toBe('09:00–18:00')
    expect(rangesText([])).toBeNull()
  })
})

describe('small helpers', () => {
  it('splits a typed list', () => {
    expect(splitList('朝阳区，海淀区、 东城区, ')).toEqual(['朝阳区', '海淀区', '东城区'])
    expect(splitList('  ')).toEqual([])
  })

  it('knows today in Shanghai', () => {
    expect(shanghaiToday(new Date('2026-12-01T15:59:59Z'))).toBe('2026-12-01')
    expect(shanghaiToday(new Date('2026-12-01T16:00:00Z'))).toBe('2026-12-02')
  })

  it('knows a mobile number', () => {
    expect(isMobile('13800138000')).toBe(true)
    expect(isMobile('+86 138 0013 8000')).toBe(true)
    expect(isMobile('someone@example.com')).toBe(false)
  })
})
