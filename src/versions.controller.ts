import { Controller, Get, Req, Res } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { versionsDocument } from './common/version-negotiation.middleware.js';

/** GET /v1 itself: Glance answers the versions document there too. */
@ApiTags('versions')
@Controller()
export class VersionsController {
  @Get('v1')
  @ApiOperation({ summary: 'API versions (also served for / and unknown versions, status 300)' })
  @ApiResponse({ status: 300, description: '{"versions": [...]}' })
  versions(@Req() req: Request, @Res() res: Response): void {
    res.status(300).type('application/json').send(JSON.stringify(versionsDocument(req)));
  }
}
